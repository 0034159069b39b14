"""Start UniPic2-SD3.5M-Kontext from a plain SD3 / SD3.5 transformer (or an existing Kontext one).

A plain SD3 checkpoint lacks only `ref_type_embed`. Loading goes through `from_config` + `load_state_dict`
(strict=False) and then checks the key sets itself: the only key allowed to be missing is `ref_type_embed`
(zero-initialised, so the converted model computes exactly what the source computes); anything else missing or
unexpected is an error naming the keys. (`from_pretrained` with its default low_cpu_mem_usage would leave the
new parameter on the meta device, notes/feas_ml.md §3.)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers.models.model_loading_utils import load_state_dict

from unipic.logging import get_logger
from unipic.models.errors import ModelLoadError
from unipic.models.kontext import SD3KontextTransformer
from unipic.storage.local import replace_dir

log = get_logger(__name__)

NEW_KEYS = frozenset({"ref_type_embed"})
SUPPORTED = ("SD3Transformer2DModel", "SD3KontextTransformer")


def _transformer_dir(src: str | Path) -> Path:
    """Accept a transformer folder or a pipeline folder with transformer/."""
    src = Path(src)
    if (src / "config.json").is_file():
        return src
    if (src / "transformer" / "config.json").is_file():
        return src / "transformer"
    raise ModelLoadError(f"{src} holds no transformer: expected config.json there or in {src}/transformer/")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = [p.name for p in folder.glob("*.safetensors")]
    if not files:
        raise ModelLoadError(
            f"no .safetensors weights in {folder} (pickled .bin checkpoints are not accepted)"
        )
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_state_dict(str(folder / name)))
    return state


def load_kontext_transformer(
    src: str | Path, torch_dtype: torch.dtype | None = None, use_ref_type_embed: bool | None = None
) -> SD3KontextTransformer:
    """Load a Kontext transformer from an SD3/SD3.5 or Kontext folder, verifying every key."""
    folder = _transformer_dir(src)
    config = SD3KontextTransformer.load_config(folder)
    class_name = config.get("_class_name")
    if class_name not in SUPPORTED:
        raise ModelLoadError(f"{folder} holds a {class_name}, not one of {', '.join(SUPPORTED)}")
    if use_ref_type_embed is not None:
        config["use_ref_type_embed"] = use_ref_type_embed
    model = SD3KontextTransformer.from_config(config)
    state = _weights(folder)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        shapes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise ModelLoadError(
            f"{folder}: weights do not fit the architecture in its config.json: {'; '.join(shapes[:4])}"
            f"{' ...' if len(shapes) > 4 else ''}. Check that config.json belongs to these weights."
        ) from None
    missing = set(result.missing_keys) - NEW_KEYS
    unexpected = set(result.unexpected_keys)
    if unexpected == NEW_KEYS and not model.config.use_ref_type_embed:
        unexpected = set()
    if missing or unexpected:
        raise ModelLoadError(
            f"{folder} does not match the {class_name} architecture in its config.json: "
            f"missing keys {sorted(missing)[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected keys {sorted(unexpected)[:8]}{'...' if len(unexpected) > 8 else ''}. "
            "Check that the folder is a complete SD3/SD3.5 diffusers transformer."
        )
    if set(result.missing_keys) & NEW_KEYS:
        log.info("%s: %s initialised to zero (new in the Kontext model)", folder, ", ".join(NEW_KEYS))
    if torch_dtype is not None:
        model = model.to(torch_dtype)
    return model.eval()


def convert_transformer(src: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """`unipic models convert`: write `src`'s transformer as an SD3KontextTransformer folder (safetensors)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ModelLoadError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    model = load_kontext_transformer(src)
    with replace_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return out
