"""MetaQuery training: what each stage trains, that the loss is wired, exact resume, export round trip."""

from __future__ import annotations

import json

import pytest
import torch
from test_metaquery_helpers import TINY_MQ, make_shapes_dataset, make_tiny_pipeline

from unipic.errors import ConfigError
from unipic.pipelines.metaquery import load_pipeline
from unipic.training.metaquery import MetaQueryTrainer, run_metaquery


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("mqdata"), n_t2i=8, n_edit=8, shard_size=4)


def _cfg(dataset, **train):
    base = dict(
        dataset=str(dataset),
        steps=2,
        batch_size=2,
        lr=1e-3,
        precision="fp32",
        ema_decay=0.0,
        log_every=1,
        sample_prompts=["a red circle"],
        sample_steps=1,
        fused_adamw=False,
    )
    base.update(train)
    return TINY_MQ.model_copy(update={"train": TINY_MQ.train.model_copy(update=base)})


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module):
    return {n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())}


@pytest.mark.parametrize("stage,dit_trains", [(1, False), (2, True)])
def test_stage_freezing(tmp_path, dataset, stage, dit_trains):
    pipe = make_tiny_pipeline()
    mllm0, conn0, dit0 = _snapshot(pipe.mllm), _snapshot(pipe.connector), _snapshot(pipe.transformer)
    trainer = MetaQueryTrainer(_cfg(dataset, stage=stage, steps=2), tmp_path, pipe=pipe)
    result = trainer.train()
    assert not _changed(mllm0, pipe.mllm)  # the MLLM never moves
    assert "queries" in _changed(conn0, pipe.connector)  # the query rows do
    assert bool(_changed(dit0, pipe.transformer)) == dit_trains
    assert all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    kinds = {
        json.loads(line).get("loss_edit") is not None for line in result.metrics_path.read_text().splitlines()
    }
    assert (True in kinds) == (stage == 2)  # stage 1 sees only T2I; stage 2 alternates with edits
    assert result.sample_grids and result.sample_grids[0].is_file()


def test_stage1_refuses_edits_and_nothing_to_train(tmp_path, dataset):
    with pytest.raises(ConfigError, match="stage=1"):
        MetaQueryTrainer(_cfg(dataset, stage=1, edit_ratio=0.5), tmp_path, pipe=make_tiny_pipeline())
    with pytest.raises(ConfigError, match="nothing would train"):
        MetaQueryTrainer(_cfg(dataset, stage=1, train_connector=False), tmp_path, pipe=make_tiny_pipeline())


def test_connector_gradient_comes_from_the_dit_loss(tmp_path, dataset):
    pipe = make_tiny_pipeline()
    trainer = MetaQueryTrainer(_cfg(dataset, stage=1), tmp_path, pipe=pipe)
    batch = next(trainer.data)
    trainer.engine.zero_grad()
    out = trainer.forward_backward_step(batch)
    assert out.loss > 0
    assert pipe.connector.queries.grad is not None and pipe.connector.queries.grad.abs().sum() > 0
    assert all(p.grad is None for p in pipe.mllm.parameters())


@pytest.mark.slow
def test_exact_resume(tmp_path, dataset):
    cfg = _cfg(dataset, stage=2, steps=4, checkpoint_every=2, ema_decay=0.9, sample_prompts=[])
    full = MetaQueryTrainer(cfg, tmp_path / "full", pipe=make_tiny_pipeline()).train()
    first = MetaQueryTrainer(cfg, tmp_path / "part", pipe=make_tiny_pipeline()).train(stop_at=2)
    assert set(first.losses) == {1, 2}
    rest = MetaQueryTrainer(cfg, tmp_path / "part", pipe=make_tiny_pipeline()).train(resume=True)
    assert rest.first_step == 2
    assert first.losses[2] == pytest.approx(full.losses[2], rel=1e-6)
    for step in (3, 4):
        assert rest.losses[step] == pytest.approx(full.losses[step], rel=1e-5, abs=1e-7)


def test_run_exports_a_loadable_model(tmp_path, dataset):
    pipe = make_tiny_pipeline()
    pipe.save_pretrained(tmp_path / "start")
    mq = _cfg(dataset, stage=2, steps=2, init_from=str(tmp_path / "start"), output=str(tmp_path / "out"))
    res = run_metaquery(mq, tmp_path / "work")
    model = load_pipeline(res.model)
    lineage = json.loads((tmp_path / "out" / "unipic_lineage.json").read_text())
    assert lineage["stage"] == "metaquery-stage2" and lineage["parent_model"] == str(tmp_path / "start")
    assert not list(tmp_path.glob(".export-tmp-*"))
    trained = _snapshot(model.connector)
    start = _snapshot(load_pipeline(tmp_path / "start").connector)
    assert any(not torch.equal(trained[n], start[n]) for n in trained)
    img = model("a red circle", num_inference_steps=1).images[0]
    assert img.size == (32, 32)


def test_stage1_from_a_kontext_folder_keeps_the_dit(tmp_path, dataset):
    from unipic.config.model import ModelConfig
    from unipic.models.bootstrap import bootstrap_base_model

    kontext = bootstrap_base_model(ModelConfig(), tmp_path / "kontext")
    mq = _cfg(dataset, stage=1, steps=1, init_from=str(kontext), output=str(tmp_path / "mq"))
    res = run_metaquery(mq, tmp_path / "work")
    model, base = load_pipeline(res.model), load_pipeline(kontext)
    assert (
        type(model).__name__ == "UniPicMetaQueryPipeline" and type(base).__name__ == "UniPicKontextPipeline"
    )
    assert model.connector.config.joint_attention_dim == base.transformer.config.joint_attention_dim
    assert model.connector.config.pooled_projection_dim == base.transformer.config.pooled_projection_dim
    for (name, a), (_, b) in zip(
        model.transformer.state_dict().items(), base.transformer.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name  # stage 1: the DiT is frozen
    assert not (tmp_path / "mq" / "text_encoder").exists()  # the SD3 text encoders are gone
