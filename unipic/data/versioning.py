"""The DVC data registry: a separate git repo (never this project's) whose DVC remote is the object store.

    registry = DataRegistry(cfg.registry, cfg.store)
    v = registry.add_version(local_dataset_dir, message="curated from shapes seed 0")
    v.rev, v.md5, v.tag          # -> KFP artifact metadata (lineage)
    registry.pull(v.tag, out)    # byte-exact restore, verified against the dataset's manifest

Order of operations makes versions trustworthy: copy into the registry, `dvc add`, `dvc push` (which must
succeed), and only then `git commit` the pointer and `git tag` the version. A push that dies half-way leaves
no commit and no tag; a rerun adds the same content (same md5) and pushes what is missing.
Later stages resolve data by version through `dvc.api` (`DataRegistry.open` / `DataRegistry.pull`).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from unipic.config.curation import RegistryConfig
from unipic.config.store import StoreConfig
from unipic.errors import DataError, StorageError, UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)
REMOTE = "store"


class DatasetVersion(BaseModel):
    tag: str
    rev: str  # the registry commit the tag points at
    md5: str  # DVC's .dir md5 of the dataset folder
    path: str  # dataset folder inside the registry
    repo: str  # registry location (local path or git URL)
    n_files: int = 0
    size: int = 0
    message: str = ""
    created_at: str = ""

    def as_metadata(self) -> dict[str, str]:
        """Flat strings for KFP artifact metadata."""
        return {"dataset_tag": self.tag, "dataset_rev": self.rev, "dataset_md5": self.md5,
                "dataset_path": self.path, "dataset_repo": self.repo}


class DataRegistry:
    def __init__(self, cfg: RegistryConfig, store_cfg: StoreConfig) -> None:
        self.cfg = cfg
        self.store_cfg = store_cfg
        self.root = Path(cfg.path).resolve()
        self._guard_not_project_repo()

    # -- plumbing ----------------------------------------------------------------------------------------
    def _guard_not_project_repo(self) -> None:
        project = Path(__file__).resolve().parents[2]
        if self.root == project or self.root in project.parents:
            raise DataError(f"registry.path {self.root} is this project's checkout; the data registry must "
                            "be a separate git repo (e.g. .unipic/registry)")

    @property
    def remote_url(self) -> str:
        return f"s3://{self.store_cfg.buckets.dvc}/{self.cfg.remote_prefix.strip('/')}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": self.store_cfg.access_key.get_secret_value(),
                    "AWS_SECRET_ACCESS_KEY": self.store_cfg.secret_key.get_secret_value(),
                    "GIT_AUTHOR_NAME": "unipic", "GIT_AUTHOR_EMAIL": "unipic@localhost",
                    "GIT_COMMITTER_NAME": "unipic", "GIT_COMMITTER_EMAIL": "unipic@localhost",
                    "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"})
        env.pop("GIT_DIR", None)
        env.pop("GIT_WORK_TREE", None)
        env.pop("GIT_INDEX_FILE", None)
        return env

    def _run(self, *args: str, check: bool = True,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run git/dvc in the registry. Credentials travel in the environment only (never argv, never the
        committed config), so `dvc` run by hand there needs AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set."""
        cmd = list(args)
        if cmd[0] == "dvc":
            cmd = [sys.executable, "-m", "dvc", *cmd[1:]]
        proc = subprocess.run(cmd, cwd=cwd or self.root, env=self._env(), capture_output=True, text=True,
                              timeout=1800)
        if check and proc.returncode != 0:
            raise DataError(f"`{' '.join(args)}` failed in the data registry {self.root}:\n"
                            f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        return proc

    def _git(self, *args: str, check: bool = True) -> str:
        return self._run("git", *args, check=check).stdout.strip()

    def _remote_config(self) -> dict[str, Any]:
        return {"url": self.remote_url, "endpointurl": self.store_cfg.endpoint_url,
                "access_key_id": self.store_cfg.access_key.get_secret_value(),
                "secret_access_key": self.store_cfg.secret_key.get_secret_value(),
                "region": self.store_cfg.region}

    # -- setup ---------------------------------------------------------------------------------------------
    def ensure(self) -> None:
        """Clone or create the registry, point its DVC remote at the store, and create the bucket."""
        if not (self.root / ".git").exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            if self.cfg.git_remote:
                self._run("git", "clone", "-q", self.cfg.git_remote, str(self.root), cwd=self.root.parent)
            else:
                self.root.mkdir(parents=True, exist_ok=True)
                self._git("init", "-q", "-b", "main")
        elif self.cfg.git_remote and self._git("rev-parse", "--verify", "-q", "HEAD", check=False):
            self._git("pull", "-q", "--ff-only", "--tags", "origin", self._git("branch", "--show-current"))
        if not (self.root / ".dvc").exists():
            self._run("dvc", "init", "-q")
            self._run("dvc", "config", "core.autostage", "false")
            self._git("add", ".dvc", ".dvcignore")
            self._git("commit", "-q", "-m", "data registry: dvc init")
        cfg_path = self.root / ".dvc" / "config"
        current = cfg_path.read_text() if cfg_path.exists() else ""
        if f"'remote \"{REMOTE}\"'" not in current:
            self._run("dvc", "remote", "add", "-d", REMOTE, self.remote_url)
        self._run("dvc", "remote", "modify", REMOTE, "url", self.remote_url)
        self._run("dvc", "remote", "modify", REMOTE, "endpointurl", self.store_cfg.endpoint_url)
        if self._git("status", "--porcelain", ".dvc/config"):
            self._git("add", ".dvc/config")
            self._git("commit", "-q", "-m", f"data registry: remote {self.remote_url}")
        from unipic.storage import ObjectStore

        ObjectStore(self.store_cfg).ensure_bucket(self.store_cfg.buckets.dvc)  # dvc push won't create it

    # -- versions ------------------------------------------------------------------------------------------
    def _pointer(self) -> Path:
        return self.root / f"{self.cfg.dataset_dir}.dvc"

    def _read_pointer(self, text: str) -> dict[str, Any]:
        data = yaml.safe_load(text) or {}
        outs = data.get("outs") or [{}]
        return outs[0]

    def versions(self) -> list[DatasetVersion]:
        """Every tagged version, oldest first."""
        if not (self.root / ".git").exists():
            return []
        out = []
        fmt = "%(refname:short)|%(*objectname)|%(objectname)|%(creatordate:iso-strict)|%(contents:subject)"
        lines = self._git("tag", "-l", f"{self.cfg.tag_prefix}*", "--sort=creatordate", f"--format={fmt}")
        for line in filter(None, lines.splitlines()):
            tag, peeled, obj, date, subject = line.split("|", 4)
            rev = peeled or obj
            show = self._run("git", "show", f"{rev}:{self.cfg.dataset_dir}.dvc", check=False)
            if show.returncode != 0:
                continue
            ptr = self._read_pointer(show.stdout)
            out.append(DatasetVersion(tag=tag, rev=rev, md5=str(ptr.get("md5", "")),
                                      path=self.cfg.dataset_dir, repo=self.cfg.git_remote or str(self.root),
                                      n_files=int(ptr.get("nfiles", 0)),
                                      size=int(ptr.get("size", 0)), message=subject, created_at=date))
        return out

    def resolve(self, rev: str) -> DatasetVersion:
        for v in self.versions():
            if rev in (v.tag, v.rev) or (len(rev) >= 7 and v.rev.startswith(rev)):
                return v
        known = ", ".join(v.tag for v in self.versions()) or "none yet"
        raise DataError(f"no dataset version '{rev}' in the registry {self.root}; known versions: {known} "
                        "(list them with `unipic data versions`)")

    def add_version(self, dataset_dir: str | Path, message: str = "") -> DatasetVersion:
        """Version a finished local dataset folder: dvc add, dvc push, then commit + tag (in that order)."""
        src = Path(dataset_dir)
        if not (src / "manifest.json").is_file():
            raise DataError(f"{src} has no manifest.json; only complete datasets are versioned")
        self.ensure()
        target = self.root / self.cfg.dataset_dir
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, target)
        self._run("dvc", "add", "-q", self.cfg.dataset_dir)
        md5 = str(self._read_pointer(self._pointer().read_text()).get("md5", ""))
        latest = self.versions()[-1] if self.versions() else None
        push = self._run("dvc", "push", "-q", "-r", REMOTE, self.cfg.dataset_dir, check=False)
        if push.returncode != 0:
            raise StorageError(
                f"dvc push to {self.remote_url} ({self.store_cfg.endpoint_url}) failed; no version was "
                "tagged. "
                f"Check that the store is up (`unipic services status`) and rerun: DVC pushes only what is "
                f"missing.\n{(push.stderr or push.stdout).strip()[-1500:]}")
        if latest is not None and latest.md5 == md5:
            self._git("checkout", "-q", "--", ".")
            log.info("dataset unchanged (md5 %s): reusing version %s", md5, latest.tag)
            return latest
        gitignore = str(Path(self.cfg.dataset_dir).parent / ".gitignore")
        self._git("add", f"{self.cfg.dataset_dir}.dvc", gitignore)
        tag = f"{self.cfg.tag_prefix}{len(self.versions()) + 1}"
        self._git("commit", "-q", "-m", message or f"dataset {tag}")
        self._git("tag", "-a", tag, "-m", message or tag)
        if self.cfg.git_remote:
            self._git("push", "-q", "origin", "HEAD", tag)
        version = self.resolve(tag)
        log.info("versioned %s as %s (rev %s, md5 %s)", src, tag, version.rev[:10], md5)
        return version

    # -- reading by version ------------------------------------------------------------------------------
    def _fs(self, rev: str) -> Any:
        from dvc.api import DVCFileSystem

        return DVCFileSystem(str(self.root) if not self.cfg.git_remote else self.cfg.git_remote, rev=rev,
                             config={"remote": {REMOTE: self._remote_config()}})

    def open(self, rel: str, rev: str, mode: str = "rb") -> Any:
        """Open one file of a dataset version through dvc.api (reads from the remote when not cached)."""
        import dvc.api

        v = self.resolve(rev)
        return dvc.api.open(f"{v.path}/{rel}", repo=str(self.root), rev=v.rev, mode=mode,
                            remote_config=self._remote_config())

    def pull(self, rev: str, out_dir: str | Path) -> Path:
        """Restore a version byte-exactly into `out_dir` (fresh), verified against its manifest."""
        from unipic.storage import verify_dir

        v = self.resolve(rev)
        out = Path(out_dir)
        if out.exists() and any(out.iterdir()):
            raise DataError(f"{out} is not empty; pull into a new folder")
        tmp = out.with_name(f".{out.name}.pull-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            fs = self._fs(v.rev)
            fs.get(v.path, str(tmp), recursive=True)
            verify_dir(tmp)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, UniPicError):
                raise
            raise StorageError(f"could not pull dataset {v.tag} ({v.md5}) from {self.remote_url}: {exc}"
                               ) from exc
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
        return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()
