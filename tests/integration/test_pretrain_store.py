"""Pre-training against the real object store (SeaweedFS on loopback): dataset and base model from s3://,
checkpoints published with manifests (old ones pruned), a restarted pod with an empty disk resuming from the
published checkpoint on the same loss trajectory, the model published with lineage."""

from __future__ import annotations

import pytest

from unipic.config import load_config
from unipic.config.train import PretrainConfig
from unipic.training.pretrain import run_pretrain

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_inputs(store_config, tmp_path_factory):
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_and_publish
    from unipic.storage import ObjectStore

    d = tmp_path_factory.mktemp("s3in")
    store = ObjectStore(store_config)
    bucket = store_config.buckets.data
    store.ensure_bucket(bucket)
    store.ensure_bucket(store_config.buckets.models)
    data_uri = f"s3://{bucket}/pretrain-test/{d.name}/shapes"
    generate_dataset(ShapesConfig(n_t2i=16, n_edit=16), data_uri, store_cfg=store_config)
    base_uri = f"s3://{store_config.buckets.models}/pretrain-test/{d.name}/base"
    bootstrap_and_publish(load_config("ci").model, base_uri, store_cfg=store_config)
    return data_uri, base_uri


def cfg(data_uri, base_uri, **kw) -> PretrainConfig:
    return PretrainConfig(**{"dataset": data_uri, "base_model": base_uri, "steps": 4, "batch_size": 4, "lr": 5e-4,
                             "log_every": 1, "sample_steps": 1, "sample_prompts": [], "sample_edits": 0,
                             "ema_decay": 0.9, **kw})


def test_s3_inputs_checkpoints_remote_resume_and_publish(store_config, tmp_path, s3_inputs, s3_prefix):
    from unipic.storage import ObjectStore

    data_uri, base_uri = s3_inputs
    store = ObjectStore(store_config)
    full = run_pretrain(cfg(data_uri, base_uri, output=f"{s3_prefix}full"), tmp_path / "full",
                        store_cfg=store_config)
    ckpt_uri = f"{s3_prefix}ckpts"
    c = cfg(data_uri, base_uri, checkpoint_every=1, keep_last=2, checkpoint_uri=ckpt_uri, output=f"{s3_prefix}model")
    first = run_pretrain(c, tmp_path / "pod1", store_cfg=store_config, stop_at=3)
    assert first.model is None
    published = sorted({o.key.split("/")[-2] for o in store.list(ckpt_uri + "/") if o.key.endswith("manifest.json")})
    assert published == ["step-00000002", "step-00000003"]  # keep_last=2 also prunes the store
    res = run_pretrain(c, tmp_path / "pod2", store_cfg=store_config, resume=True)  # a new, empty work dir
    assert res.train.first_step == 3
    assert res.train.losses[4] == pytest.approx(full.train.losses[4], rel=1e-5)
    manifest = store.read_manifest(res.model)
    assert manifest.metadata["dataset_uri"] == data_uri and manifest.metadata["parent_model"] == base_uri
    assert manifest.metadata["dataset_hash"] == store.read_manifest(data_uri).total_sha256
    assert "transformer/config.json" in manifest.files


def test_corrupt_published_checkpoint_is_refused(store_config, tmp_path, s3_inputs, s3_prefix):
    from unipic.errors import IntegrityError
    from unipic.storage import ObjectStore

    data_uri, base_uri = s3_inputs
    ckpt_uri = f"{s3_prefix}ckpts"
    c = cfg(data_uri, base_uri, checkpoint_every=2, checkpoint_uri=ckpt_uri)
    run_pretrain(c, tmp_path / "pod1", store_cfg=store_config, stop_at=2)
    store = ObjectStore(store_config)
    store.write_bytes(f"{ckpt_uri}/step-00000002/optimizer.pt", b"tampered")
    with pytest.raises(IntegrityError):
        run_pretrain(c, tmp_path / "pod2", store_cfg=store_config, resume=True)
