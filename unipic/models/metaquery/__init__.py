"""UniPic2-MetaQuery: a frozen Qwen2.5-VL, learnable queries and a connector that feed the Kontext DiT."""

from unipic.models.metaquery.connector import MetaQueryConnector
from unipic.models.metaquery.mllm import build_mllm, load_mllm, meta_reference_mllm
from unipic.models.metaquery.model import MetaQueryConditioner, build_conditioner, build_connector
from unipic.models.metaquery.processor import MetaQueryInputs, MetaQueryProcessor, make_qwen_tokenizer

__all__ = [
    "MetaQueryConditioner",
    "MetaQueryConnector",
    "MetaQueryInputs",
    "MetaQueryProcessor",
    "build_conditioner",
    "build_connector",
    "build_mllm",
    "load_mllm",
    "make_qwen_tokenizer",
    "meta_reference_mllm",
]
