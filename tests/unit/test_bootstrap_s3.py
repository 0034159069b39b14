"""`unipic models bootstrap --out s3://...` publishes atomically and loads back through materialize."""

from __future__ import annotations

import uuid

import pytest
import torch

from unipic.config import load_config
from unipic.models.bootstrap import bootstrap_and_publish
from unipic.models.errors import ModelError
from unipic.pipelines.loading import load_pipeline

pytestmark = pytest.mark.integration


def test_publish_to_store_and_load(store, store_config, tmp_path):
    uri = f"s3://{store_config.buckets.models}/test-bootstrap-{uuid.uuid4().hex[:8]}"
    cfg = load_config("ci").model
    assert bootstrap_and_publish(cfg, uri, store_config) == uri
    manifest = store.read_manifest(uri)
    assert manifest.metadata["kind"] == "bootstrap"
    assert manifest.metadata["lineage"]["stage"] == "models.bootstrap"
    assert "transformer/diffusion_pytorch_model.safetensors" in manifest.files
    with pytest.raises(ModelError, match="already published"):
        bootstrap_and_publish(cfg, uri, store_config)
    pipe = load_pipeline(uri, store_config, cache_dir=tmp_path / "cache")
    out = pipe(
        "a red circle", num_inference_steps=2, output_type="pt", generator=torch.Generator().manual_seed(0)
    )
    assert out.images.shape == (1, 3, 32, 32)
