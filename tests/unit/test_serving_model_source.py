"""Where the predictor finds its model: --model, the storage-initializer's /mnt/models, or $STORAGE_URI."""

import json

import pytest

from unipic.errors import ServiceError, StorageError
from unipic.serving import predictor
from unipic.serving.predictor import model_version, resolve_model_dir


def fake_model(path, extra=b""):
    path.mkdir(parents=True)
    (path / "model_index.json").write_text(json.dumps({"_class_name": "UniPicKontextPipeline"}))
    (path / "transformer").mkdir()
    (path / "transformer" / "weights.safetensors").write_bytes(b"0" * 16 + extra)
    return path


def test_explicit_folder_and_missing_or_wrong_folder(tmp_path):
    m = fake_model(tmp_path / "m")
    assert resolve_model_dir(str(m)) == m
    with pytest.raises(StorageError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServiceError, match="no model_index.json"):
        resolve_model_dir(str(tmp_path / "empty"))


def test_cluster_conventions(tmp_path, monkeypatch):
    mnt = tmp_path / "mnt-models"
    monkeypatch.setattr(predictor, "KSERVE_MODEL_DIR", mnt)
    monkeypatch.delenv("STORAGE_URI", raising=False)
    with pytest.raises(ServiceError, match="STORAGE_URI"):
        resolve_model_dir(None)
    other = fake_model(tmp_path / "other")
    monkeypatch.setenv("STORAGE_URI", str(other))
    assert resolve_model_dir(None) == other  # no initializer download: fetch $STORAGE_URI ourselves
    fake_model(mnt)
    assert resolve_model_dir(None) == mnt  # the storage-initializer's copy wins


def test_model_version_tracks_content(tmp_path):
    a, b = fake_model(tmp_path / "a"), fake_model(tmp_path / "b", extra=b"retrained")
    assert model_version(a) == model_version(a) and model_version(a) != model_version(b)
    assert model_version(a).startswith("local-")
    (a / "manifest.json").write_text(json.dumps({"total_sha256": "ab" * 32}))
    assert model_version(a) == "sha256-abababababab"
