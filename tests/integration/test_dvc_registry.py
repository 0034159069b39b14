"""The DVC data registry on a real SeaweedFS: versions are pushed before they are tagged, listed, resolved and
restored byte-exactly from the remote; a push to a dead store leaves no tag, and a rerun completes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from unipic.config.curation import RegistryConfig
from unipic.config.store import StoreConfig
from unipic.data.versioning import DataRegistry
from unipic.errors import DataError, StorageError
from unipic.storage import write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def make_dataset(root: Path, n: int) -> Path:
    (root / "shards").mkdir(parents=True)
    for i in range(n):
        (root / "shards" / f"part-{i}.bin").write_bytes(hashlib.sha256(str(i).encode()).digest() * 50)
    (root / "index.parquet").write_bytes(b"index %d" % n)
    write_manifest(root, {"n": n})
    return root


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_versions_push_tag_list_and_pull_byte_exact(tmp_path: Path, store_config: StoreConfig) -> None:
    cfg = RegistryConfig(path=tmp_path / "registry", remote_prefix=f"t-{tmp_path.name}")
    reg = DataRegistry(cfg, store_config)
    d1 = make_dataset(tmp_path / "d1", 3)
    d2 = make_dataset(tmp_path / "d2", 5)
    v1 = reg.add_version(d1, "first")
    v2 = reg.add_version(d2, "second")
    assert (v1.tag, v2.tag) == ("curated-v1", "curated-v2")
    assert v1.md5.endswith(".dir") and v1.md5 != v2.md5 and len(v1.rev) == 40
    assert [v.tag for v in reg.versions()] == ["curated-v1", "curated-v2"]
    assert reg.resolve(v1.rev[:10]).tag == "curated-v1"
    # same content again: no new version
    shutil.copytree(d2, tmp_path / "d2b")
    assert reg.add_version(tmp_path / "d2b").tag == "curated-v2"
    # drop the local DVC cache and the working copy: the pull must come from the object store
    shutil.rmtree(tmp_path / "registry" / ".dvc" / "cache")
    shutil.rmtree(tmp_path / "registry" / cfg.dataset_dir)
    out = reg.pull("curated-v1", tmp_path / "restored")
    assert tree_hashes(out) == tree_hashes(d1)
    with reg.open("index.parquet", "curated-v2") as fh:
        assert fh.read() == b"index 5"
    with pytest.raises(DataError, match="known versions: curated-v1, curated-v2"):
        reg.resolve("curated-v9")


def test_dead_store_during_push_leaves_no_tag_and_rerun_completes(tmp_path: Path,
                                                                   store_config: StoreConfig) -> None:
    cfg = RegistryConfig(path=tmp_path / "registry", remote_prefix=f"t-{tmp_path.name}")
    good = DataRegistry(cfg, store_config)
    good.ensure()
    # the store goes away: the remote now points at a port nobody listens on
    dead = DataRegistry(cfg, store_config.model_copy(update={"endpoint": "127.0.0.1:9"}))
    dead._run("dvc", "remote", "modify", "store", "endpointurl", "http://127.0.0.1:9")
    dead.ensure = lambda: None  # type: ignore[method-assign]
    d1 = make_dataset(tmp_path / "d1", 4)
    with pytest.raises(StorageError, match="no version was tagged"):
        dead.add_version(d1)
    assert good.versions() == [] and "curated-v" not in good._git("tag", "-l")
    v = good.add_version(d1, "after the outage")
    assert v.tag == "curated-v1"
    shutil.rmtree(tmp_path / "registry" / ".dvc" / "cache")
    assert tree_hashes(good.pull(v.tag, tmp_path / "out")) == tree_hashes(d1)


def test_registry_behind_a_git_remote(tmp_path: Path, store_config: StoreConfig) -> None:
    """Cluster shape: the registry is a git remote; a second, fresh clone sees and restores the version."""
    import subprocess

    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    cfg = RegistryConfig(path=tmp_path / "clone1", git_remote=str(bare), remote_prefix=f"t-{tmp_path.name}")
    d1 = make_dataset(tmp_path / "d1", 3)
    v = DataRegistry(cfg, store_config).add_version(d1, "from pod 1")
    other = DataRegistry(cfg.model_copy(update={"path": tmp_path / "clone2"}), store_config)
    other.ensure()
    assert [(x.tag, x.rev, x.md5) for x in other.versions()] == [(v.tag, v.rev, v.md5)]
    assert v.repo == str(bare)
    assert tree_hashes(other.pull(v.tag, tmp_path / "out")) == tree_hashes(d1)
    d2 = make_dataset(tmp_path / "d2", 4)
    assert other.add_version(d2).tag == "curated-v2"
    first = DataRegistry(cfg, store_config)
    first.ensure()  # pulls the new commit and tag
    assert [x.tag for x in first.versions()] == ["curated-v1", "curated-v2"]


def test_registry_refuses_the_project_repo(store_config: StoreConfig) -> None:
    with pytest.raises(DataError, match="separate git repo"):
        DataRegistry(RegistryConfig(path=Path(__file__).resolve().parents[2]), store_config)
