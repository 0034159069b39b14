"""A real outage: our own SeaweedFS is stopped between versions. Publishing and `dvc push` fail with a clear
error, nothing is tagged or marked published; after a restart the rerun completes and verifies by hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from unipic.config import load_config
from unipic.data.curation.stage import CurationInputs, run_curation
from unipic.data.versioning import DataRegistry
from unipic.errors import StorageError
from unipic.storage import ObjectStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_outage_between_versions_then_rerun(tmp_path: Path, seaweed_configs) -> None:
    from unipic.services import seaweedfs

    store_cfg, services = seaweed_configs(tmp_path / "state")
    seaweedfs.up(store_cfg, services)
    try:
        base = load_config("ci", ["shapes.n_t2i=30", "shapes.n_edit=0", "curation.gate.min_rows=10",
                                  f"features.state_dir={tmp_path}/features", f"registry.path={tmp_path}/registry"])
        inp = CurationInputs.from_config(base.model_copy(update={"store": store_cfg}))
        v1 = run_curation(["shapes"], inp, tmp_path / "w1", features=False)
        assert v1.version is not None and v1.version.tag == "curated-v1"

        seaweedfs.down(store_cfg, services)  # the store goes away
        inp2 = CurationInputs.from_config(base.model_copy(update={
            "store": store_cfg, "shapes": base.shapes.model_copy(update={"n_t2i": 40})}))
        with pytest.raises(StorageError):
            run_curation(["shapes"], inp2, tmp_path / "w2", features=False)
        assert [v.tag for v in DataRegistry(inp2.registry, store_cfg).versions()] == ["curated-v1"]
        # versioning the (complete, local) dataset while the store is down fails too, and tags nothing
        registry = DataRegistry(inp2.registry, store_cfg)
        with pytest.raises(StorageError, match="not reachable|no version was tagged"):
            registry.add_version(tmp_path / "w2" / "dataset")
        assert [v.tag for v in registry.versions()] == ["curated-v1"]

        seaweedfs.up(store_cfg, services)  # back; data written before the outage persisted
        v2 = run_curation(["shapes"], inp2, tmp_path / "w2", features=False)
        assert v2.version is not None and v2.version.tag == "curated-v2"
        store = ObjectStore(store_cfg)
        assert store.fetch(v2.uri, tmp_path / "fetched").total_sha256 == v2.manifest_sha256
        for v, folder in ((v1, tmp_path / "w1/dataset"), (v2, tmp_path / "w2/dataset")):
            pulled = DataRegistry(inp2.registry, store_cfg).pull(v.version.tag, tmp_path / f"pull-{v.version.tag}")
            assert _hashes(pulled) == _hashes(folder)
    finally:
        seaweedfs.down(store_cfg, services)


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
