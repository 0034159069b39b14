"""`generate_dataset` to s3:// publishes atomically (manifest last, lineage in it) and reads back verified."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unipic.config.data import ShapesConfig
from unipic.data.generate import generate_dataset
from unipic.data.shapes import score_t2i
from unipic.data.shards import iter_dataset, read_index
from unipic.storage import MANIFEST_NAME, join_uri, materialize, verify_dir

pytestmark = pytest.mark.integration

CFG = ShapesConfig(image_size=32, n_t2i=20, n_edit=10, shard_size=8)


def test_generate_to_s3_and_read_back(store, store_config, s3_prefix, tmp_path):
    manifest = generate_dataset(CFG, s3_prefix, store_cfg=store_config, kind="both")
    assert store.is_published(s3_prefix)
    remote = store.read_manifest(s3_prefix)
    assert remote.total_sha256 == manifest.total_sha256
    assert remote.metadata["n_samples"] == 30 and remote.metadata["lineage"]["stage"] == "data.generate"
    keys = {o.key.rsplit("/", 1)[-1] for o in store.list(s3_prefix, recursive=True)}
    assert {MANIFEST_NAME, "index.parquet", "t2i-000000.tar", "edit-000001.tar"} <= keys

    local = materialize(s3_prefix, store_config.model_copy(update={"cache_dir": tmp_path / "cache"}))
    verify_dir(local)
    assert len(read_index(local)) == 30
    recs = list(iter_dataset(local, kind="t2i"))
    assert all(s.correct for s in score_t2i([r.image() for r in recs], [r.json()["spec"] for r in recs]))

    from unipic.errors import DataError

    with pytest.raises(DataError, match="--overwrite"):
        generate_dataset(CFG, s3_prefix, store_cfg=store_config, kind="t2i")
    again = generate_dataset(CFG.model_copy(update={"n_t2i": 4}), s3_prefix, store_cfg=store_config, kind="t2i",
                             overwrite=True)
    assert store.read_manifest(s3_prefix).total_sha256 == again.total_sha256
    assert not any("edit-" in o.key for o in store.list(s3_prefix, recursive=True))

    # the same config published locally has the same content hash
    local_manifest = generate_dataset(CFG, tmp_path / "local", kind="both")
    assert local_manifest.total_sha256 == manifest.total_sha256


def test_cli_generate_to_s3(store_config, s3_prefix, store, tmp_path):
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1",
           "UNIPIC_S3_ACCESS_KEY": store_config.access_key.get_secret_value(),
           "UNIPIC_S3_SECRET_KEY": store_config.secret_key.get_secret_value()}
    res = subprocess.run(
        [sys.executable, "-m", "unipic.cli.main", "data", "generate", "--task", "t2i", "--n", "5",
         "--out", s3_prefix, "--set", f"store.endpoint={store_config.endpoint}"],
        capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert store.read_manifest(s3_prefix).metadata["n_samples"] == 5
    assert store.exists(join_uri(s3_prefix, "index.parquet"))
    res = subprocess.run(
        [sys.executable, "-m", "unipic.cli.main", "data", "verify", s3_prefix,
         "--set", f"store.endpoint={store_config.endpoint}", "--set", f"store.cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert '"t2i": 5' in res.stdout


def test_s3_without_store_config_is_a_clear_error(s3_prefix):
    from unipic.errors import DataError

    with pytest.raises(DataError, match="no store config"):
        generate_dataset(CFG, s3_prefix, store_cfg=None)
