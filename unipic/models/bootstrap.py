"""`bootstrap_base_model`: the local stand-in for SD3.5-Medium weights.

Writes a random-init UniPic2-SD3.5M-Kontext pipeline as a diffusers folder in the SD3 layout
(model_index.json, transformer/, vae/, text_encoder{,_2,_3}/, tokenizer{,_2,_3}/, scheduler/), safetensors
only, deterministic in `model.seed`. Every later stage starts from such a folder, exactly as it would from
real weights.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from unipic.config.base import config_hash, config_to_dict
from unipic.config.model import ModelConfig
from unipic.lineage import Lineage
from unipic.logging import get_logger
from unipic.models.errors import ModelError
from unipic.storage.local import replace_dir

log = get_logger(__name__)

MODEL_CARD = "unipic_model.json"
"""Our own record next to model_index.json: the ModelConfig that built the folder, its hash, and the kind."""


def write_model_card(
    out_dir: Path, model_cfg: ModelConfig, kind: str, extra: dict[str, Any] | None = None
) -> None:
    card = {
        "kind": kind,
        "config_hash": config_hash(model_cfg),
        "model": config_to_dict(model_cfg),
        **(extra or {}),
    }
    (out_dir / MODEL_CARD).write_text(json.dumps(card, indent=2, sort_keys=True))


def read_model_card(model_dir: str | Path) -> dict[str, Any] | None:
    path = Path(model_dir) / MODEL_CARD
    return json.loads(path.read_text()) if path.is_file() else None


def bootstrap_base_model(model_cfg: ModelConfig, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Build and save a random-init pipeline to `out_dir` (local). Written to a temp sibling, then renamed."""
    from unipic.models.factory import build_pipeline, count_parameters

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ModelError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    pipe = build_pipeline(model_cfg)
    with replace_dir(out) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        write_model_card(
            tmp,
            model_cfg,
            "bootstrap",
            {
                "transformer_params": count_parameters(pipe.transformer),
                "seed": model_cfg.seed,
            },
        )
        _check_safetensors_only(tmp)
    log.info("bootstrapped %s (transformer %.2f M params)", out, count_parameters(pipe.transformer) / 1e6)
    return out


def _check_safetensors_only(folder: Path) -> None:
    pickled = [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    if pickled:
        raise ModelError(
            f"refusing to publish pickled weights: {[str(p.relative_to(folder)) for p in pickled]}"
        )


def bootstrap_and_publish(
    model_cfg: ModelConfig,
    out: str,
    store_cfg=None,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Bootstrap locally; for an s3:// `out`, to a temp dir that is then published (manifest last)."""
    from unipic.storage import ObjectStore, is_s3_uri

    if not is_s3_uri(out):
        return str(bootstrap_base_model(model_cfg, out, overwrite=overwrite))
    if store_cfg is None:
        raise ModelError(f"{out} is an s3:// URI but no store config was given")
    store = ObjectStore(store_cfg)
    if store.is_published(out) and not overwrite:
        raise ModelError(f"{out} is already published; choose another --out or pass --overwrite")
    with tempfile.TemporaryDirectory(prefix="unipic-bootstrap-") as tmp:
        local = bootstrap_base_model(model_cfg, Path(tmp) / "model")
        lineage = Lineage(stage="models.bootstrap", config_hash=config_hash(model_cfg))
        meta = {"kind": "bootstrap", "lineage": lineage.model_dump(), **(metadata or {})}
        store.publish_dir(local, out, metadata=meta)
    return out
