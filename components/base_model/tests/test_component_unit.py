"""The base model is bootstrapped once per model config, then reused; a given URI must be published."""

from types import SimpleNamespace

import pytest

from components.base_model.component import resolve_base_model
from unipic.errors import UniPicError


@pytest.fixture
def cfg(monkeypatch, store_config):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    return [f"store.endpoint={store_config.endpoint}", "model.seed=1234"]


def test_bootstrap_then_reuse(cfg, store, tmp_path):
    out1 = SimpleNamespace(path=str(tmp_path / "m1"), metadata={})
    uri = resolve_base_model.python_func(preset="ci", overrides=cfg, base_model_uri="", model=out1)
    assert store.is_published(uri) and out1.metadata["kind"] == "bootstrap"
    out2 = SimpleNamespace(path=str(tmp_path / "m2"), metadata={})
    assert resolve_base_model.python_func(preset="ci", overrides=cfg, base_model_uri="", model=out2) == uri
    assert out2.metadata["model_hash"] == out1.metadata["model_hash"]
    out3 = SimpleNamespace(path=str(tmp_path / "m3"), metadata={})
    assert resolve_base_model.python_func(preset="ci", overrides=cfg, base_model_uri=uri, model=out3) == uri
    assert out3.metadata["kind"] == "given"


def test_unpublished_given_uri_is_refused(cfg, s3_prefix, tmp_path):
    out = SimpleNamespace(path=str(tmp_path / "m"), metadata={})
    with pytest.raises(UniPicError, match="not a published"):
        resolve_base_model.python_func(preset="ci", overrides=cfg, base_model_uri=s3_prefix + "nope", model=out)
