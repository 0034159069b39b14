"""The prerequisites check passes on a healthy store and lists every problem on a broken one."""

import pytest

from components.prerequisites.component import check_prerequisites
from unipic.errors import UniPicError


@pytest.fixture
def creds(monkeypatch, store_config):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    return [f"store.endpoint={store_config.endpoint}"]


def test_healthy_store_passes(creds, store, s3_prefix, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    store.publish_dir(tmp_path, s3_prefix + "ds")
    out = check_prerequisites.python_func(preset="ci", overrides=creds, inputs={"dataset": s3_prefix + "ds", "x": ""})
    assert "buckets present" in out and "published" in out


def test_every_problem_is_listed(creds, s3_prefix):
    with pytest.raises(UniPicError) as exc:
        check_prerequisites.python_func(
            preset="ci", overrides=creds + ["store.buckets.runs=no-such-bucket"],
            inputs={"dataset": s3_prefix + "missing", "base_model": "/nonexistent/model"},
        )
    msg = str(exc.value)
    assert "no-such-bucket" in msg and "missing" in msg and "/nonexistent/model" in msg


def test_wrong_credentials_fail_fast(store_config, monkeypatch):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", "wrong-key")
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", "wrong-secret")
    with pytest.raises(UniPicError, match="wrong-key"):
        check_prerequisites.python_func(preset="ci", overrides=[f"store.endpoint={store_config.endpoint}"], inputs={})
