"""Atomic, verifiable, resumable checkpoints.

A checkpoint is a directory `step-XXXXXXXX/` holding the engine's files (model + optimizer + schedule, or
DeepSpeed's partitioned states), the EMA weights, and per-rank trainer state (RNG states of python,
numpy and torch, the data position, the step). It is written under a temporary name and renamed into
place only after `checkpoint.json` - with a sha256 per file - is written, so a directory with that
file is complete by construction. Loading re-hashes every file first: a mismatch raises IntegrityError
and nothing is loaded. When a publish URI is configured the finished directory is also published to the
object store (manifest last).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from unipic.errors import IntegrityError, UniPicError
from unipic.logging import get_logger
from unipic.training.parallel import Engine, ParallelContext, barrier

log = get_logger(__name__)

META = "checkpoint.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """Re-hash every file listed in checkpoint.json; raise IntegrityError naming the first bad one."""
    meta_path = path / META
    if not meta_path.is_file():
        raise IntegrityError(f"{path} has no {META}: it is not a complete checkpoint (an interrupted save?)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{meta_path} is not valid JSON ({exc}); delete {path} and resume from an earlier one")
    for rel, rec in meta["files"].items():
        f = path / rel
        if not f.is_file():
            raise IntegrityError(f"checkpoint {path.name}: file {rel} is missing; delete {path} to resume from the "
                                 "previous checkpoint")
        digest = sha256_file(f)
        if digest != rec["sha256"]:
            raise IntegrityError(
                f"checkpoint {path.name}: {rel} is corrupt (sha256 {digest[:12]}... != recorded "
                f"{rec['sha256'][:12]}...); it was not loaded. Delete {path} to resume from the previous checkpoint"
            )
    return meta


class CheckpointManager:
    def __init__(self, root: Path, keep_last: int, ctx: ParallelContext, *, publish_uri: str | None = None,
                 store_cfg: Any = None):
        self.root = Path(root)
        self.keep_last = keep_last
        self.ctx = ctx
        self.publish_uri = publish_uri.rstrip("/") if publish_uri else None
        self.store_cfg = store_cfg
        if ctx.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in [*self.root.glob(".tmp-step-*"), *self.root.glob(".tmp-fetch-*")]:
                shutil.rmtree(stale, ignore_errors=True)
        barrier(ctx)

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        out = [p for p in self.root.iterdir() if _STEP_DIR.match(p.name) and (p / META).is_file()]
        return sorted(out, key=lambda p: p.name)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, step: int, engine: Engine, state: dict[str, Any],
             tensors: dict[str, dict[str, torch.Tensor]] | None = None, metadata: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint for `step`. Collective: every rank calls it.

        `state` is this rank's trainer state (torch-pickled); `tensors` are rank-0 safetensors files
        (e.g. {"ema": ema_state}).
        """
        final = self.root / f"step-{step:08d}"
        tmp = self.root / f".tmp-step-{step:08d}"
        if self.ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier(self.ctx)
        engine.save(tmp)
        torch.save(state, tmp / f"trainer_state.rank{self.ctx.rank}.pt")
        if self.ctx.is_main and tensors:
            from safetensors.torch import save_file

            for name, tdict in tensors.items():
                save_file({k: v.detach().contiguous() for k, v in tdict.items()}, str(tmp / f"{name}.safetensors"))
        barrier(self.ctx)
        if self.ctx.is_main:
            files = {}
            for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = f.relative_to(tmp).as_posix()
                files[rel] = {"sha256": sha256_file(f), "size": f.stat().st_size}
            meta = {
                "format": 1,
                "step": step,
                "world_size": self.ctx.world_size,
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "files": files,
                "metadata": metadata or {},
            }
            part = tmp / (META + ".part")
            part.write_text(json.dumps(meta, indent=1, sort_keys=True))
            part.replace(tmp / META)
            _fsync_dir(tmp)
            if final.exists():
                shutil.rmtree(final)
            tmp.replace(final)
            _fsync_dir(self.root)
            self._prune()
            log.info("checkpoint step %d -> %s (%d files)", step, final, len(files))
            if self.publish_uri:
                self._publish(final, step, meta)
        barrier(self.ctx)
        return final

    def _prune(self) -> None:
        done = self.complete()
        for old in done[: max(0, len(done) - self.keep_last)]:
            shutil.rmtree(old, ignore_errors=True)

    def remote_complete(self) -> list[str]:
        """Published checkpoints under publish_uri (those with a manifest), oldest first."""
        if not self.publish_uri:
            return []
        from unipic.storage import ObjectStore

        found = set()
        for obj in ObjectStore(self.store_cfg).list(self.publish_uri + "/", recursive=True):
            parts = obj.key.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-1] == "manifest.json" and _STEP_DIR.match(parts[-2]):
                found.add(parts[-2])
        return [f"{self.publish_uri}/{name}" for name in sorted(found)]

    def fetch_latest_remote(self) -> Path | None:
        """Bring the newest published checkpoint into the local root (hash-verified), for a pod that restarts
        with an empty disk. Rank 0 downloads; every rank gets the path."""
        from unipic.training.parallel import broadcast_object

        path = None
        if self.ctx.is_main:
            remote = self.remote_complete()
            if remote:
                from unipic.storage import ObjectStore

                name = remote[-1].rsplit("/", 1)[-1]
                tmp = self.root / f".tmp-fetch-{name}"
                shutil.rmtree(tmp, ignore_errors=True)
                ObjectStore(self.store_cfg).fetch(remote[-1], tmp)
                final = self.root / name
                shutil.rmtree(final, ignore_errors=True)
                tmp.replace(final)
                log.info("fetched checkpoint %s from %s", name, remote[-1])
                path = str(final)
        path = broadcast_object(path, self.ctx)
        return Path(path) if path else None

    def _publish(self, path: Path, step: int, meta: dict[str, Any]) -> None:
        from unipic.storage import ObjectStore

        uri = f"{self.publish_uri}/{path.name}"
        ObjectStore(self.store_cfg).publish_dir(path, uri, metadata={"kind": "checkpoint", "step": step,
                                                                     **meta.get("metadata", {})})
        log.info("checkpoint step %d published to %s", step, uri)
        store = ObjectStore(self.store_cfg)
        remote = self.remote_complete()
        for old in remote[: max(0, len(remote) - self.keep_last)]:
            store.delete(old + "/manifest.json")  # unpublish first: a reader never sees a half-deleted one
            store.delete_prefix(old + "/")

    def load(self, path: Path, engine: Engine) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
        """Verify, then restore the engine; return (this rank's trainer state, rank-0 tensor files)."""
        meta = verify_checkpoint(path)
        if meta["world_size"] != self.ctx.world_size:
            raise UniPicError(
                f"checkpoint {path.name} was written by {meta['world_size']} process(es) but this run has "
                f"{self.ctx.world_size}; resume with the same process count"
            )
        engine.load(path)
        state = torch.load(path / f"trainer_state.rank{self.ctx.rank}.pt", weights_only=False)
        from safetensors.torch import load_file

        tensors = {f[: -len(".safetensors")]: load_file(str(path / f)) for f in meta["files"]
                   if "/" not in f and f.endswith(".safetensors") and f != "model.safetensors"}
        return state, tensors
