"""The whole curation stage on a real SeaweedFS: ShapesWorld + a bad folder source → gate → publish (verified
by hash) → Feast (online + training-set selection) → DVC version; a failing gate publishes and versions
nothing; an object store that drops mid-publish leaves no manifest and no tag, and a rerun completes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from unipic.config import load_config
from unipic.config.store import StoreConfig
from unipic.data.curation.stage import CurationInputs, run_curation
from unipic.data.validation import GateFailed
from unipic.data.versioning import DataRegistry
from unipic.errors import StorageError
from unipic.storage import ObjectStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_curation_sources import make_folder  # noqa: E402


def inputs(tmp: Path, store: StoreConfig, *sets: str) -> CurationInputs:
    cfg = load_config("ci", ["shapes.n_t2i=48", "shapes.n_edit=48", "curation.gate.min_rows=40",
                             f"features.state_dir={tmp}/features", f"registry.path={tmp}/registry",
                             f"registry.remote_prefix=t-{tmp.name}", f"curation.output_prefix=t-{tmp.name}", *sets])
    cfg = cfg.model_copy(update={"store": store})
    return CurationInputs.from_config(cfg)


def test_stage_end_to_end(tmp_path: Path, store_config: StoreConfig) -> None:
    folder = tmp_path / "folder"
    expected = make_folder(folder, 20)
    inp = inputs(tmp_path, store_config)
    out = run_curation(["shapes", f"folder:{folder}"], inp, tmp_path / "work")
    rep = out.report
    assert rep.n_in == 96 + 27
    for reason, n in expected.items():
        assert rep.rejected.get(reason) == n
    meta = out.metadata()
    for key in ("uri", "manifest_sha256", "dataset_rev", "dataset_md5", "dataset_tag", "config_hash", "git_commit"):
        assert meta.get(key), key
    assert meta["dataset_tag"] == "curated-v1" and meta["gate"] == "passed"
    # published atomically and verifiable by hash
    store = ObjectStore(store_config)
    fetched = tmp_path / "fetched"
    manifest = store.fetch(meta["uri"], fetched)
    assert manifest.total_sha256 == meta["manifest_sha256"]
    for name in ("index.parquet", "README.md", "card/signals.png", "card/samples.png",
                 "validation/validation_result.json", "validation/validation_summary.html"):
        assert (fetched / name).is_file(), name
    # Feast: online store and training-set selection by historical retrieval
    from unipic.features import FeatureStoreClient, select_training_set

    client = FeatureStoreClient(inp.features, store_config)
    import pandas as pd

    index = pd.read_parquet(fetched / "index.parquet")
    sid = index["sample_id"].iloc[0]
    row = client.online([sid])[0]
    assert row["sharpness"] == pytest.approx(index["sharpness"].iloc[0], rel=1e-5)
    selected, dropped = select_training_set(inp.features, list(index["sample_id"]) + ["never-curated"],
                                            client=client)
    assert dropped["no_features"] == 1
    assert len(selected) == int((index["agreement"] >= 0.5).sum())
    assert list(selected["sample_id"]) == [s for s, a in zip(index["sample_id"], index["agreement"]) if a >= 0.5]
    # the CLI reads the same registry and stores
    env_sets = ["-s", f"features.state_dir={tmp_path}/features", "-s", f"registry.path={tmp_path}/registry",
                "-s", f"store.endpoint={store_config.endpoint}"]
    env = {"UNIPIC_S3_ACCESS_KEY": store_config.access_key.get_secret_value(),
           "UNIPIC_S3_SECRET_KEY": store_config.secret_key.get_secret_value(), "UNIPIC_NO_PROGRESS": "1",
           "PATH": "/usr/bin:/bin"}
    unipic = [sys.executable, "-m", "unipic.cli.main"]
    res = subprocess.run([*unipic, "data", "versions", *env_sets], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert [v["tag"] for v in json.loads(res.stdout)] == ["curated-v1"]
    res = subprocess.run([*unipic, "data", "pull", "--rev", "curated-v1", "--out", str(tmp_path / "pulled"),
                          *env_sets], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "pulled/index.parquet").read_bytes() == (out.dataset_dir / "index.parquet").read_bytes()
    res = subprocess.run([*unipic, "features", "show", sid, *env_sets], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["sample_id"] == sid
    res = subprocess.run([*unipic, "features", "show", "no-such-id", *env_sets], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 2 and "no features for no-such-id" in res.stderr and "Traceback" not in res.stderr
    # `unipic data curate` itself: a second version from the folder source alone
    res = subprocess.run([*unipic, "data", "curate", "--source", f"folder:{folder}", "--work-dir",
                          str(tmp_path / "cli-work"), "--no-features", *env_sets, "-s", "curation.gate.min_rows=10",
                          "-s", "curation.gate.max_task_fraction=1.0", "-s", f"curation.output_prefix=t-{tmp_path.name}",
                          "-s", f"registry.remote_prefix=t-{tmp_path.name}"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    printed = json.loads(res.stdout)
    assert printed["dataset_tag"] == "curated-v2" and printed["rejected"]["decode:truncated"] == 1
    assert store.read_manifest(printed["uri"]).total_sha256 == printed["manifest_sha256"]
    res = subprocess.run([*unipic, "data", "curate", "--source", "ftp://nowhere", *env_sets], capture_output=True,
                         text=True, env=env)
    assert res.returncode == 2 and "unknown source" in res.stderr and "Traceback" not in res.stderr


def test_failing_gate_publishes_and_versions_nothing(tmp_path: Path, store_config: StoreConfig) -> None:
    inp = inputs(tmp_path, store_config, "curation.gate.min_rows=100000")
    with pytest.raises(GateFailed, match="expect_table_row_count_to_be_between") as exc:
        run_curation(["shapes"], inp, tmp_path / "work")
    assert exc.value.result is not None and not exc.value.result.success
    assert (tmp_path / "work/validation/validation_summary.html").is_file()
    store = ObjectStore(store_config)
    assert store.list(f"s3://{store_config.buckets.data}/t-{tmp_path.name}/") == []
    assert DataRegistry(inp.registry, store_config).versions() == []
    assert not (tmp_path / "features/signals").exists()


def test_store_dropped_mid_publish_then_rerun_completes(tmp_path: Path, store_config: StoreConfig,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    inp = inputs(tmp_path, store_config, "shapes.n_t2i=40", "shapes.n_edit=0", "curation.gate.min_rows=10",
                 "curation.shard_size=8")
    real_upload = ObjectStore.upload_file
    calls = {"n": 0}

    def flaky_upload(self, path, uri):  # the connection drops after three files
        calls["n"] += 1
        if calls["n"] > 3:
            raise StorageError("connection reset by peer (simulated outage)")
        return real_upload(self, path, uri)

    monkeypatch.setattr(ObjectStore, "upload_file", flaky_upload)
    with pytest.raises(StorageError, match="simulated outage"):
        run_curation(["shapes"], inp, tmp_path / "work")
    monkeypatch.setattr(ObjectStore, "upload_file", real_upload)
    store = ObjectStore(store_config)
    prefix = f"s3://{store_config.buckets.data}/t-{tmp_path.name}/"
    partial = store.list(prefix)
    assert partial and not any(o.uri.endswith("manifest.json") for o in partial)
    assert DataRegistry(inp.registry, store_config).versions() == []
    out = run_curation(["shapes"], inp, tmp_path / "work")
    assert out.version is not None and out.version.tag == "curated-v1"
    assert {o.uri.rsplit("/", 1)[0] for o in partial} <= {o.uri.rsplit("/", 1)[0] for o in store.list(out.uri + "/")}
    assert {o.uri for o in store.list(prefix)} == {o.uri for o in store.list(out.uri + "/")}  # no leftovers
    manifest = store.fetch(out.uri, tmp_path / "fetched")  # verifies every file's sha256
    assert manifest.total_sha256 == out.manifest_sha256
