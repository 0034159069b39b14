"""The frozen multimodal LLM: a tiny random Qwen2.5-VL (CPU presets) or real weights from a folder / s3:// URI.

Nothing of the MLLM itself is trained (notes/unipic2.md §4): its parameters are frozen here, once, and the
only learnable rows that enter it are the query embeddings, which live in the connector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unipic.config.metaquery import MLLMConfig
from unipic.errors import ConfigError
from unipic.logging import get_logger
from unipic.models.metaquery.processor import MetaQueryProcessor, make_qwen_tokenizer, shapes_corpus

log = get_logger(__name__)

REFERENCE_FILE = "reference.json"

# Qwen2.5-VL-7B-Instruct's published config.json, for meta-device shape checks without the weights.
QWEN25_VL_7B = dict(
    text_config=dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        bos_token_id=151643,
        eos_token_id=151645,
    ),
    vision_config=dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=3584,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
        tokens_per_second=2,
    ),
    image_token_id=151655,
    video_token_id=151656,
    vision_start_token_id=151652,
    vision_end_token_id=151653,
    tie_word_embeddings=False,
)


def tiny_qwen_config(cfg: MLLMConfig, tokenizer: Any) -> Any:
    """A Qwen2.5-VL config at toy width whose special ids match `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    head_dim = cfg.hidden_size // cfg.num_attention_heads
    half = head_dim // 2
    t = max(1, half // 4)
    mrope = [t, (half - t) // 2, half - t - (half - t) // 2]
    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_hidden_layers,
            num_attention_heads=cfg.num_attention_heads,
            num_key_value_heads=cfg.num_key_value_heads,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope},
            bos_token_id=None,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=cfg.vision_depth,
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=cfg.vision_intermediate_size,
            num_heads=cfg.vision_num_heads,
            out_hidden_size=cfg.hidden_size,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[cfg.vision_depth - 1],
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def hidden_size(mllm: Any) -> int:
    return int(mllm.config.text_config.hidden_size)


def build_tiny_mllm(cfg: MLLMConfig, num_queries: int = 0) -> tuple[Any, MetaQueryProcessor]:
    """Random-init tiny Qwen2.5-VL and its in-code tokenizer (seeded, so two builds are identical)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    tok = make_qwen_tokenizer(shapes_corpus() if cfg.learn_merges else None)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = Qwen2_5_VLForConditionalGeneration(tiny_qwen_config(cfg, tok))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    processor = MetaQueryProcessor(
        tok, num_queries=num_queries, image_size=cfg.image_size, system_prompt=cfg.system_prompt
    )
    return freeze(model.to(_dtype(cfg.dtype))), processor


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def resolve_local(uri: str, store: Any | None = None, cache_dir: str | Path | None = None) -> Path:
    """A local folder for `uri`: the folder itself, or an s3:// prefix fetched, hash-verified and cached."""
    if uri.startswith("s3://"):
        from unipic.storage import materialize

        if store is None:
            raise ConfigError(
                f"{uri} is an s3:// URI: pass the store config (the `store` section) to load it"
            )
        return Path(materialize(uri, store, cache_dir))
    path = Path(uri).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"MLLM folder '{uri}' does not exist: set metaquery.mllm.pretrained to a Qwen2.5-VL "
            "folder or s3:// URI, or null for the tiny random model"
        )
    return path


def load_mllm(
    source: str | Path,
    *,
    dtype: str = "float32",
    num_queries: int = 0,
    image_size: int | None = None,
    system_prompt: str = "",
    store: Any | None = None,
) -> tuple[Any, MetaQueryProcessor]:
    """Load a Hugging Face Qwen2.5-VL folder (config.json + safetensors + tokenizer files), frozen."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    path = resolve_local(str(source), store)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{path} has no config.json: it is not a Hugging Face model folder "
            "(expected the Qwen2.5-VL layout: config.json, *.safetensors, tokenizer files)"
        )
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=_dtype(dtype))
    processor = MetaQueryProcessor.from_pretrained(
        path, num_queries=num_queries, image_size=image_size, system_prompt=system_prompt
    )
    log.info(
        "loaded MLLM from %s (%.1fM params, frozen)", source, sum(p.numel() for p in model.parameters()) / 1e6
    )
    return freeze(model), processor


def build_mllm(cfg: MLLMConfig, num_queries: int, store: Any | None = None) -> tuple[Any, MetaQueryProcessor]:
    if cfg.pretrained:
        return load_mllm(
            cfg.pretrained,
            dtype=cfg.dtype,
            num_queries=num_queries,
            image_size=cfg.image_size,
            system_prompt=cfg.system_prompt,
            store=store,
        )
    return build_tiny_mllm(cfg, num_queries)


def write_reference(path: Path, source: str) -> None:
    """Point a model folder's mllm/ at weights stored elsewhere instead of copying 16 GB of frozen weights."""
    path.mkdir(parents=True, exist_ok=True)
    (path / REFERENCE_FILE).write_text(json.dumps({"pretrained": source}, indent=2))


def read_reference(path: Path) -> str | None:
    ref = path / REFERENCE_FILE
    return json.loads(ref.read_text())["pretrained"] if ref.is_file() else None


def meta_reference_mllm() -> Any:
    """Qwen2.5-VL-7B on the meta device: shapes and parameter counts without memory or weights."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN25_VL_7B))


def save_mllm(mllm: Any, processor: MetaQueryProcessor, path: str | Path) -> Path:
    """Write the Hugging Face Qwen2.5-VL layout (config.json, safetensors, tokenizer, preprocessor_config.json):
    the same layout `load_mllm` reads for Qwen2.5-VL-7B-Instruct."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    mllm.save_pretrained(path, safe_serialization=True)
    processor.tokenizer.save_pretrained(path)
    processor.image_processor.save_pretrained(path)
    return path
