"""Helpers shared by the MetaQuery tests (a tiny MetaQuery pipeline, a small ShapesWorld dataset), and their checks.

Importable from sibling test modules (pytest's default `prepend` import mode puts this folder on sys.path).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from unipic.config.data import ShapesConfig
from unipic.config.metaquery import ConnectorConfig, MetaQueryConfig
from unipic.config.model import ModelConfig
from unipic.data.shapes import make_edit_sample, make_t2i_sample, render, to_png
from unipic.models.autoencoder import build_autoencoder
from unipic.models.kontext import SD3KontextTransformer
from unipic.models.metaquery import build_conditioner
from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

TINY_MQ = MetaQueryConfig(
    num_queries=4, connector=ConnectorConfig(width=32, depth=1, num_heads=2, mlp_dim=64)
)


def make_tiny_pipeline(mq: MetaQueryConfig = TINY_MQ, seed: int = 0) -> UniPicMetaQueryPipeline:
    mc = ModelConfig()
    torch.manual_seed(seed)
    transformer = SD3KontextTransformer(**mc.transformer.diffusers_kwargs())
    cond = build_conditioner(
        mq,
        joint_attention_dim=transformer.config.joint_attention_dim,
        pooled_projection_dim=transformer.config.pooled_projection_dim,
    )
    pipe = UniPicMetaQueryPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=build_autoencoder(mc.autoencoder),
        mllm=cond.mllm,
        processor=cond.processor,
        connector=cond.connector,
    )
    return pipe.configure(image_to=mq.image_to)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_shapes_dataset(
    root: Path, n_t2i: int = 16, n_edit: int = 16, shard_size: int = 8, size: int = 32
) -> Path:
    """A ShapesWorld dataset in the project format (shards + index.parquet + manifest.json)."""
    cfg = ShapesConfig(image_size=size)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    rows = []
    for kind, n in (("t2i", n_t2i), ("edit", n_edit)):
        for s0 in range(0, n, shard_size):
            shard = f"shards/{kind}-{s0 // shard_size:06d}.tar"
            with tarfile.open(root / shard, "w") as tar:
                for i in range(s0, min(n, s0 + shard_size)):
                    sid = f"{kind}-{i:06d}"
                    if kind == "t2i":
                        s = make_t2i_sample(cfg, i)
                        text, task = s.caption, s.task
                        _add(tar, f"{sid}.png", to_png(render(s.scene)))
                    else:
                        s = make_edit_sample(cfg, i)
                        text, task = s.instruction, s.category
                        _add(tar, f"{sid}.src.png", to_png(render(s.source)))
                        _add(tar, f"{sid}.tgt.png", to_png(render(s.target)))
                    _add(tar, f"{sid}.json", json.dumps({"text": text, "task": task}).encode())
                    rows.append(
                        dict(
                            sample_id=sid,
                            kind=kind,
                            task=task,
                            text=text,
                            shard=shard,
                            width=size,
                            height=size,
                            sha256="",
                            split="train",
                        )
                    )
    pd.DataFrame(rows).to_parquet(root / "index.parquet")
    from unipic.storage import write_manifest

    write_manifest(root, {"kind": "test-dataset"})
    return root


def test_helpers_build_what_the_trainer_reads(tmp_path):
    from unipic.training.data import DatasetIndex

    root = make_shapes_dataset(tmp_path / "ds", n_t2i=4, n_edit=3, shard_size=2)
    index = DatasetIndex(root, "train")
    assert len(index.rows("t2i")) == 4 and len(index.rows("edit")) == 3
    assert (root / "manifest.json").is_file()
