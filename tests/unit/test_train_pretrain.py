"""PretrainTrainer on a bootstrapped ci model and a tiny dataset: the flow-matching step, edit references,
caption dropout, exact resume, export with EMA weights and lineage, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_train_data import make_dataset
from unipic.config import load_config
from unipic.config.train import PretrainConfig
from unipic.errors import ConfigError
from unipic.training.io import LINEAGE_FILE
from unipic.training.pretrain import PretrainTrainer, run_pretrain


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    from unipic.models.bootstrap import bootstrap_base_model

    return bootstrap_base_model(load_config("ci").model, tmp_path_factory.mktemp("base") / "base")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds") / "ds", n_t2i=24, n_edit=16, shard_size=8)


def pcfg(base_model: Path, dataset: Path, **kw) -> PretrainConfig:
    args = dict(dataset=str(dataset), base_model=str(base_model), steps=4, batch_size=4, lr=5e-4, log_every=1,
                edit_ratio=0.5, sample_steps=1, sample_prompts=[], sample_edits=0, ema_decay=0.9)
    args.update(kw)
    return PretrainConfig(**args)


def test_run_exports_a_pipeline_with_ema_weights_and_lineage(tmp_path, base_model, dataset):
    cfg = pcfg(base_model, dataset, checkpoint_every=2, sample_prompts=["a red square"], sample_edits=2)
    res = run_pretrain(cfg, tmp_path / "run")
    model = Path(res.model)
    assert (model / "model_index.json").is_file() and (model / "transformer").is_dir()
    assert not list(model.rglob("*.bin"))
    lineage = json.loads((model / LINEAGE_FILE).read_text())
    assert lineage["stage"] == "pretrain" and lineage["parent_model"] == str(base_model)
    assert lineage["dataset_uri"] == str(dataset) and len(lineage["dataset_hash"]) == 64
    assert lineage["config_hash"] and lineage["git_commit"] and lineage["exported_weights"] == "ema"
    ema = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000004" / "ema.safetensors"))
    exported = {}
    for f in (model / "transformer").glob("*.safetensors"):
        exported.update(load_file(str(f)))
    name = "proj_out.weight"
    assert torch.allclose(exported[name].float(), ema[name])
    live = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000004" / "model.safetensors"))
    assert not torch.equal(live[name], ema[name])  # EMA, not the live weights, is what ships
    base = load_file(str(next((base_model / "transformer").glob("*.safetensors"))))
    assert not torch.equal(base["pos_embed.proj.weight"], exported["pos_embed.proj.weight"])
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_t2i" in r for r in recs) and any("loss_edit" in r for r in recs)
    assert all(r["loss"] > 0 and r["grad_norm"] > 0 for r in recs)
    assert res.train.sample_grids and res.train.sample_grids[-1].stat().st_size > 500
    assert res.train.curve_png is not None


def test_edit_batches_pass_the_source_as_reference(tmp_path, base_model, dataset):
    trainer = PretrainTrainer(pcfg(base_model, dataset, caption_dropout=0.0), tmp_path)
    seen = []
    original = trainer.model.forward

    def spy(*args, **kw):
        seen.append(kw.get("ref_latents"))
        return original(*args, **kw)

    trainer.model.forward = spy
    t2i, edit = next(trainer.data), next(trainer.data)
    trainer.train_step(t2i)
    trainer.train_step(edit)
    assert seen[0] is None
    assert seen[1] is not None and seen[1].shape == (4, 12, 16, 16)
    expected = trainer.pipe.encode_image(edit.sources)
    assert torch.allclose(seen[1], expected)


def test_timestep_sampling_static_and_resolution_shift(tmp_path, base_model, dataset):
    trainer = PretrainTrainer(pcfg(base_model, dataset, gradient_checkpointing=True), tmp_path)
    assert trainer.model.gradient_checkpointing
    plain = trainer.sample_sigmas(4000, 64)
    assert 0 < plain.min() and plain.max() < 1 and abs(float(plain.mean()) - 0.5) < 0.03  # logit-normal(0, 1)
    trainer.cfg.timesteps.shift = 3.0
    assert float(trainer.sample_sigmas(4000, 64).mean()) > float(plain.mean()) + 0.1
    trainer.cfg.timesteps.resolution_shift = True
    small, large = trainer.sample_sigmas(4000, 64).mean(), trainer.sample_sigmas(4000, 4096).mean()
    assert float(large) > float(small) + 0.1  # more image tokens -> noisier training timesteps
    out = trainer.train_step(next(trainer.data))  # one step with gradient checkpointing on
    assert out["loss"] > 0 and out["grad_norm"] > 0


def test_caption_dropout_uses_the_empty_prompt(tmp_path, base_model, dataset):
    trainer = PretrainTrainer(pcfg(base_model, dataset), tmp_path)
    drop = torch.tensor([True, False])
    embeds, pooled = trainer.encode_text(["a red square", "a blue square"], drop)
    empty, empty_pooled = trainer.empty_prompt()
    assert torch.allclose(embeds[0], empty[0]) and torch.allclose(pooled[0], empty_pooled[0])
    assert not torch.allclose(embeds[1], empty[0])


def test_pretrain_resume_continues_the_same_losses(tmp_path, base_model, dataset):
    cfg = pcfg(base_model, dataset, steps=4, checkpoint_every=2, ema_decay=0.9)
    full = PretrainTrainer(cfg, tmp_path / "full").train()
    PretrainTrainer(cfg, tmp_path / "part").train(stop_at=2)
    resumed = PretrainTrainer(cfg, tmp_path / "part").train(resume=True)
    assert resumed.first_step == 2
    for step in (3, 4):
        assert resumed.losses[step] == pytest.approx(full.losses[step], rel=1e-5), step


def test_missing_inputs_fail_with_the_key_named(tmp_path, base_model):
    with pytest.raises(ConfigError, match="pretrain.dataset"):
        PretrainTrainer(PretrainConfig(base_model=str(base_model)), tmp_path)


def test_memory_refusal_names_the_batch_size(tmp_path, base_model, dataset):
    with pytest.raises(ConfigError, match="pretrain.batch_size"):
        PretrainTrainer(pcfg(base_model, dataset, max_memory_gb=0.01), tmp_path)


@pytest.mark.slow
def test_cli_pretrain_runs_and_resumes(tmp_path, base_model, dataset):
    from typer.testing import CliRunner

    from unipic.cli.main import _register, app

    _register()
    args = ["train", "pretrain", "-p", "ci", "--work-dir", str(tmp_path / "w"),
            "-s", f"pretrain.dataset={dataset}", "-s", f"pretrain.base_model={base_model}",
            "-s", "pretrain.steps=2", "-s", "pretrain.warmup_steps=0", "-s", "pretrain.batch_size=4", "-s", "pretrain.sample_steps=1",
            "-s", "pretrain.sample_prompts=[]", "-s", "pretrain.sample_edits=0",
            "-s", f"pretrain.output={tmp_path / 'out'}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["steps"] == 2 and summary["model"] == str(tmp_path / "out")
    r2 = CliRunner().invoke(app, [*args[:-2], "-s", "pretrain.steps=3", "-s", f"pretrain.output={tmp_path / 'o2'}",
                                  "--resume"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout[r2.stdout.index("{"):])["resumed_from_step"] == 2


@pytest.mark.slow
def test_latent_cache_gives_the_same_losses_and_is_reused(tmp_path, base_model, dataset):
    plain = PretrainTrainer(pcfg(base_model, dataset, steps=3), tmp_path / "plain").train()
    cached_trainer = PretrainTrainer(pcfg(base_model, dataset, steps=3, cache_latents=True), tmp_path / "c")
    cache_dir = cached_trainer.latent_cache.dir
    files = sorted(p.name for p in cache_dir.iterdir())
    assert "complete.json" in files and any(f.startswith("shards__edit-") for f in files)
    cached = cached_trainer.train()
    for step in (1, 2, 3):
        assert cached.losses[step] == pytest.approx(plain.losses[step], rel=1e-4), step
    stamp = (cache_dir / "complete.json").stat().st_mtime_ns
    again = PretrainTrainer(pcfg(base_model, dataset, steps=3, cache_latents=True), tmp_path / "c")
    assert again.latent_cache.dir == cache_dir and (cache_dir / "complete.json").stat().st_mtime_ns == stamp
