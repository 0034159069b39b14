"""Precomputed image latents and text embeddings, once per (dataset, frozen encoders).

The autoencoder and the text encoders are frozen during pre-training, so their outputs for a sample never
change: computing them once saves their forward passes on every epoch (the text encoders dominate at
small DiT sizes; at SD3.5-M scale the VAE encoder does). The cache lives in the run directory next to the
checkpoints, keyed by the dataset's manifest hash, the split and a hash of the frozen components' files,
so a new dataset version or another base model never reuses stale entries. One safetensors file per shard
(the data stream reads one shard at a time) and `complete.json`, written last with a sha256 per file.
Caption dropout still works: the trainer swaps in the empty-prompt encoding for dropped samples.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from unipic.errors import IntegrityError
from unipic.logging import get_logger
from unipic.progress import progress
from unipic.training.checkpoint import sha256_file
from unipic.training.data import DatasetIndex, decode_png, read_shard
from unipic.training.parallel import ParallelContext, barrier

log = get_logger(__name__)

FROZEN = ("vae", "text_encoder", "text_encoder_2", "text_encoder_3", "tokenizer", "tokenizer_2", "tokenizer_3")
DONE = "complete.json"


def frozen_components_hash(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in FROZEN:
        folder = Path(model_dir) / name
        if not folder.is_dir():
            continue
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f.relative_to(model_dir).as_posix().encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()


def cache_key(dataset_hash: str, split: str, model_hash: str) -> str:
    return hashlib.sha256(f"{dataset_hash}:{split}:{model_hash}".encode()).hexdigest()[:16]


class LatentCache:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        meta = json.loads((self.dir / DONE).read_text())
        self.kinds: dict[str, list[str]] = meta["kinds"]

    @classmethod
    def build(cls, pipe: Any, dataset_dir: Path, split: str, root: Path, model_dir: Path, ctx: ParallelContext,
              batch_size: int = 64) -> LatentCache:
        index = DatasetIndex(dataset_dir, split)
        info = index.info()
        dataset_hash = info.total_sha256 or hashlib.sha256(
            (Path(dataset_dir) / "index.parquet").read_bytes()).hexdigest()
        key = cache_key(dataset_hash, split, frozen_components_hash(model_dir))
        final = Path(root) / key
        if ctx.is_main and not cls._valid(final):
            cls._write(pipe, index, Path(dataset_dir), final, batch_size)
        barrier(ctx)
        log.info("latent cache %s", final)
        return cls(final)

    @staticmethod
    def _valid(path: Path) -> bool:
        done = path / DONE
        if not done.is_file():
            return False
        meta = json.loads(done.read_text())
        for rel, digest in meta["files"].items():
            f = path / rel
            if not f.is_file() or sha256_file(f) != digest:
                log.warning("latent cache %s: %s is missing or damaged; rebuilding", path, rel)
                return False
        return True

    @staticmethod
    @torch.no_grad()
    def _write(pipe: Any, index: DatasetIndex, dataset_dir: Path, final: Path, batch_size: int) -> None:
        from safetensors.torch import save_file

        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files: dict[str, str] = {}
        kinds: dict[str, list[str]] = {}
        for kind in ("t2i", "edit"):
            rows = index.rows(kind)
            shards = sorted(rows["shard"].unique()) if len(rows) else []
            kinds[kind] = [str(s) for s in shards]
            for shard in progress(shards, total=len(shards), desc=f"cache {kind} latents", unit="shard"):
                sub = rows[rows["shard"] == shard]
                members = read_shard(dataset_dir / shard)
                tensors: dict[str, torch.Tensor] = {}
                ids, texts = [str(x) for x in sub["sample_id"]], [str(x) for x in sub["text"]]
                for i in range(0, len(ids), batch_size):
                    bid, btxt = ids[i:i + batch_size], texts[i:i + batch_size]
                    enc = pipe.encode_prompt(btxt, do_cfg=False)
                    main = "png" if kind == "t2i" else "tgt.png"
                    lat = pipe.encode_image(torch.stack([decode_png(members[s][main]) for s in bid]))
                    ref = (pipe.encode_image(torch.stack([decode_png(members[s]["src.png"]) for s in bid]))
                           if kind == "edit" else None)
                    for j, sid in enumerate(bid):
                        tensors[f"{sid}.latents"] = lat[j].float().contiguous()
                        tensors[f"{sid}.embeds"] = enc.embeds[j].float().contiguous()
                        tensors[f"{sid}.pooled"] = enc.pooled[j].float().contiguous()
                        if ref is not None:
                            tensors[f"{sid}.ref_latents"] = ref[j].float().contiguous()
                rel = shard_file(shard)
                save_file(tensors, str(tmp / rel))
                files[rel] = sha256_file(tmp / rel)
        (tmp / DONE).write_text(json.dumps({"files": files, "kinds": kinds}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)

    def load_shard(self, shard: str) -> dict[str, dict[str, torch.Tensor]]:
        from safetensors.torch import load_file

        path = self.dir / shard_file(shard)
        if not path.is_file():
            raise IntegrityError(f"latent cache {self.dir} has no entry for shard {shard}; delete the directory to "
                                 "rebuild it")
        out: dict[str, dict[str, torch.Tensor]] = {}
        for name, t in load_file(str(path)).items():
            sid, field = name.rsplit(".", 1)
            out.setdefault(sid, {})[field] = t
        return out

    def loaders(self) -> dict[str, Callable[[str], dict[str, dict[str, torch.Tensor]]]]:
        return {kind: self.load_shard for kind, shards in self.kinds.items() if shards}


def shard_file(shard: str) -> str:
    return shard.replace("/", "__").removesuffix(".tar") + ".safetensors"
