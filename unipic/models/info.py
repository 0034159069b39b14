"""`describe_model`: what is in a diffusers model folder, read from configs and safetensors headers only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unipic.models.errors import ModelLoadError

ARCH_KEYS = (
    "num_layers",
    "num_attention_heads",
    "attention_head_dim",
    "in_channels",
    "patch_size",
    "sample_size",
    "joint_attention_dim",
    "caption_projection_dim",
    "pooled_projection_dim",
    "pos_embed_max_size",
    "dual_attention_layers",
    "qk_norm",
    "use_ref_type_embed",
)


BUFFERS = ("pos_embed.pos_embed", "_anchor")
"""Persistent buffers saved with the weights that are not parameters (fixed sin-cos table, a placeholder)."""


def _count_params(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in folder.glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():
                if key.endswith(BUFFERS):
                    continue
                n = 1
                for d in st.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


def describe_model(model_dir: str | Path) -> dict[str, Any]:
    """Components (class, parameter count), transformer architecture, scheduler settings, model card."""
    from unipic.models.bootstrap import read_model_card

    root = Path(model_dir)
    index_path = root / "model_index.json"
    if not index_path.is_file():
        raise ModelLoadError(f"{root} is not a diffusers pipeline folder (no model_index.json)")
    index = json.loads(index_path.read_text())
    components: dict[str, Any] = {}
    for name, spec in sorted(index.items()):
        if name.startswith("_") or not isinstance(spec, list):
            continue
        entry: dict[str, Any] = {"class": None if spec[1] is None else f"{spec[0]}.{spec[1]}"}
        sub = root / name
        if sub.is_dir() and list(sub.glob("*.safetensors")):
            entry["params"] = _count_params(sub)
        components[name] = entry
    out: dict[str, Any] = {"path": str(root), "pipeline": index.get("_class_name"), "components": components}
    tcfg = root / "transformer" / "config.json"
    if tcfg.is_file():
        cfg = json.loads(tcfg.read_text())
        out["transformer"] = {k: cfg.get(k) for k in ARCH_KEYS if k in cfg}
        out["transformer"]["class"] = cfg.get("_class_name")
    scfg = root / "scheduler" / "scheduler_config.json"
    if scfg.is_file():
        s = json.loads(scfg.read_text())
        out["scheduler"] = {
            k: s.get(k) for k in ("_class_name", "shift", "use_dynamic_shifting", "num_train_timesteps")
        }
    vcfg = root / "vae" / "config.json"
    if vcfg.is_file():
        v = json.loads(vcfg.read_text())
        out["vae"] = {
            k: v.get(k)
            for k in (
                "_class_name",
                "factor",
                "latent_channels",
                "block_out_channels",
                "scaling_factor",
                "shift_factor",
            )
            if k in v
        }
    card = read_model_card(root)
    if card:
        out["card"] = {k: card[k] for k in ("kind", "config_hash", "seed") if k in card}
    return out
