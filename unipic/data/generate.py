"""The `generate` stage: a ShapesWorld dataset in the shared dataset format, locally or in the object store.

Sample i of each stream depends only on (seed, stream, i) (see `t2i.sample_rng`), so a dataset of n samples is
a prefix of one of 2n samples and sharding never changes content. The directory is built under a temporary
name and renamed into place (local) or published with the manifest last (s3://), so readers never see half a
dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from unipic.config.base import config_hash, config_to_dict
from unipic.config.data import ShapesConfig
from unipic.config.store import StoreConfig
from unipic.data.shards import DATASET_FORMAT, PRIMARY_IMAGE, SHARD_DIR, ShardWriter, write_index
from unipic.errors import DataError
from unipic.lineage import Lineage
from unipic.logging import get_logger
from unipic.progress import progress
from unipic.storage import Manifest, is_s3_uri, sha256_bytes, write_manifest

log = get_logger(__name__)

Kind = Literal["t2i", "edit", "both"]
GENERATE_KINDS = ("t2i", "edit", "both")


def sample_id(kind: str, split: str, index: int) -> str:
    return f"{kind}-{split}-{index:08d}"


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _write_t2i(cfg: ShapesConfig, root: Path, rows: list[dict[str, Any]]) -> None:
    from unipic.data.shapes.render import render, to_png
    from unipic.data.shapes.t2i import make_t2i_sample

    with ShardWriter(root / SHARD_DIR, "t2i", cfg.shard_size) as writer:
        for i in progress(range(cfg.n_t2i), total=cfg.n_t2i, desc="t2i samples", unit="img"):
            s = make_t2i_sample(cfg, i)
            key = sample_id("t2i", s.split, i)
            png = to_png(render(s.scene))
            meta = {"sample_id": key, "kind": "t2i", "seed": cfg.seed, **s.model_dump(mode="json")}
            files = {"png": png, "json": _dump(meta)}
            shard = writer.write(key, files)
            rows.append({"sample_id": key, "kind": "t2i", "task": s.task, "text": s.caption,
                         "shard": f"{SHARD_DIR}/{shard}", "width": cfg.image_size, "height": cfg.image_size,
                         "sha256": sha256_bytes(files[PRIMARY_IMAGE["t2i"]]), "split": s.split})


def _write_edit(cfg: ShapesConfig, root: Path, rows: list[dict[str, Any]]) -> None:
    from unipic.data.shapes.edits import make_edit_sample
    from unipic.data.shapes.render import render, to_png

    with ShardWriter(root / SHARD_DIR, "edit", cfg.shard_size) as writer:
        for i in progress(range(cfg.n_edit), total=cfg.n_edit, desc="edit triplets", unit="pair"):
            e = make_edit_sample(cfg, i)
            key = sample_id("edit", e.split, i)
            src, tgt = to_png(render(e.source)), to_png(render(e.target))
            meta = {"sample_id": key, "kind": "edit", "seed": cfg.seed, **e.model_dump(mode="json")}
            files = {"src.png": src, "tgt.png": tgt, "json": _dump(meta)}
            shard = writer.write(key, files)
            rows.append({"sample_id": key, "kind": "edit", "task": e.category, "text": e.instruction,
                         "shard": f"{SHARD_DIR}/{shard}", "width": cfg.image_size, "height": cfg.image_size,
                         "sha256": sha256_bytes(files[PRIMARY_IMAGE["edit"]]), "split": e.split})


def _write_report(cfg: ShapesConfig, root: Path, rows: list[dict[str, Any]], kind: str) -> None:
    """report.md + preview.png: what a person (or the KFP UI) looks at first. Reading the preview back from the
    shards just written doubles as a check that they decode."""
    from unipic.data.shapes.grid import dataset_preview
    from unipic.data.shapes.heldout import heldout_pairs

    dataset_preview(root, root / "preview.png", n=16, scale=2)
    counts = Counter((r["kind"], r["task"], r["split"]) for r in rows)
    pairs = ", ".join(f"{c} {s}" for c, s in sorted(heldout_pairs(tuple(cfg.colors), tuple(cfg.shapes))))
    lines = [
        "# ShapesWorld dataset", "",
        f"{len(rows)} samples ({kind}), {cfg.image_size} px, seed {cfg.seed}, split "
        f"**{'heldout' if cfg.heldout else 'train'}**, config hash `{config_hash(cfg)}`.", "",
        f"Held-out colour-shape pairs: {pairs or 'none'}; held-out share of compositions: {cfg.heldout_fraction}.",
        "", "| kind | task | split | samples |", "|---|---|---|---|",
        *[f"| {k} | {t} | {s} | {n} |" for (k, t, s), n in sorted(counts.items())],
        "", "![first samples](preview.png)", "",
    ]
    tmp = root / "report.md.tmp"
    tmp.write_text("\n".join(lines))
    os.replace(tmp, root / "report.md")


def build_dataset(cfg: ShapesConfig, root: str | Path, kind: Kind = "both") -> Manifest:
    """Write a complete dataset into the (new or empty) local directory `root`; the manifest comes last."""
    if kind not in GENERATE_KINDS:
        raise DataError(f"unknown dataset kind '{kind}'; choose one of {', '.join(GENERATE_KINDS)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if kind in ("t2i", "both"):
        _write_t2i(cfg, root, rows)
    if kind in ("edit", "both"):
        _write_edit(cfg, root, rows)
    if not rows:
        raise DataError(f"nothing to generate: shapes.n_t2i={cfg.n_t2i}, shapes.n_edit={cfg.n_edit} for kind "
                        f"'{kind}'; set a positive count, e.g. --set shapes.n_t2i=100")
    write_index(root, rows)
    _write_report(cfg, root, rows, kind)
    lineage = Lineage(stage="data.generate", config_hash=config_hash(cfg))
    metadata = {
        "format": DATASET_FORMAT,
        "generator": "shapes_world",
        "kind": kind,
        "split": "heldout" if cfg.heldout else "train",
        "n_samples": len(rows),
        "counts": {f"{k}/{t}": n for (k, t), n in sorted(Counter((r["kind"], r["task"]) for r in rows).items())},
        "image_size": cfg.image_size,
        "shapes_config": config_to_dict(cfg),
        "lineage": lineage.model_dump(),
    }
    return write_manifest(root, metadata)


def _replace_dir(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        elif not overwrite:
            raise DataError(f"'{out}' already exists and is not empty; choose a new --out or pass --overwrite")
        else:
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, out)


def generate_dataset(cfg: ShapesConfig, out: str | Path, store_cfg: StoreConfig | None = None,
                     kind: Kind = "both", overwrite: bool = False) -> Manifest:
    """Generate a ShapesWorld dataset at `out`: a local directory, or an s3://bucket/prefix (needs `store_cfg`).

    Returns the manifest (counts, lineage and per-file hashes in `manifest.metadata` / `manifest.files`)."""
    if kind not in GENERATE_KINDS:
        raise DataError(f"unknown dataset kind '{kind}'; choose one of {', '.join(GENERATE_KINDS)}")
    if is_s3_uri(out):
        if store_cfg is None:
            raise DataError(f"'{out}' is an s3:// URI but no store config was given; pass the StoreConfig "
                            "(the CLI uses the preset's `store` section)")
        from unipic.storage import ObjectStore

        store = ObjectStore(store_cfg)
        if not overwrite and store.is_published(str(out)):
            raise DataError(f"'{out}' already holds a published dataset; choose a new --out or pass --overwrite "
                            "to replace it")
        with tempfile.TemporaryDirectory(prefix="unipic-shapes-") as tmp:
            manifest = build_dataset(cfg, tmp, kind)
            published = store.publish_dir(tmp, str(out), metadata=manifest.metadata)
        log.info("published %d samples to %s", manifest.metadata["n_samples"], out)
        return published
    dest = Path(out)
    if dest.exists() and not overwrite and (not dest.is_dir() or any(dest.iterdir())):
        raise DataError(f"'{dest}' already exists and is not empty; choose a new --out or pass --overwrite")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        manifest = build_dataset(cfg, tmp, kind)
        _replace_dir(tmp, dest, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %d samples to %s", manifest.metadata["n_samples"], out)
    return manifest
