"""Flow-GRPO on a tiny Kontext pipeline: rollouts, the ratio/KL invariants, the editing reference, the trainer."""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from unipic.config.model import ModelConfig
from unipic.config.rl import GRPOConfig, LoRAConfig, RLConfig, RLStageConfig
from unipic.errors import UniPicError
from unipic.rl.advantages import compute_advantages
from unipic.rl.lora import add_lora, merge_lora
from unipic.rl.loss import grpo_step_loss
from unipic.rl.prompts import PromptSource
from unipic.rl.rewards import RewardResult
from unipic.rl.rollout import Condition, rollout_chunk, rollout_round, rollout_sigmas
from unipic.rl.trainer import FlowGRPOTrainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on a shared 2-core machine spin against each other (10x slower); tiny models need one."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def base_pipe():
    from unipic.models.factory import build_pipeline

    cfg = ModelConfig.model_validate(
        {"init": "diffusers", "text": {"use_t5": False, "clip_max_length": 8, "t5_max_length": 4,
                                      "train_tokenizers": False}}
    )
    return build_pipeline(cfg)


@pytest.fixture()
def pipe(base_pipe):
    return copy.deepcopy(base_pipe)


def _t2i(n=2):
    return [Condition(prompt=p) for p in ["a red circle", "a blue square", "a green triangle"][:n]]


def _edit(n=2):
    imgs = [Image.new("RGB", (32, 32), c) for c in ["white", "red"]]
    return [Condition(prompt="make the red circle blue", source=imgs[i], key=("make", i)) for i in range(n)]


def test_rollout_stores_chain_logprobs_and_groups(pipe):
    sig = rollout_sigmas(pipe, 3)
    chunks = rollout_round(pipe, _t2i(2), group_size=2, batch_size=2, sigmas=sig, noise_level=0.7,
                           guidance_scale=4.0, generator=torch.Generator().manual_seed(0))
    assert len(chunks) == 2
    ch = chunks[0]
    assert ch.latents.shape == (2, 4, *pipe.latent_shape) and ch.log_probs.shape == (2, 3)
    assert ch.keys == ["a red circle", "a red circle"]
    assert len(ch.images) == 2 and ch.images[0].size == (32, 32)
    assert torch.isfinite(ch.log_probs).all()
    assert not torch.equal(ch.latents[0, -1], ch.latents[1, -1])  # G different samples of one prompt


def test_ratio_is_exactly_one_and_kl_zero_at_lora_init(pipe):
    add_lora(pipe.transformer, LoRAConfig(rank=4, alpha=8))
    sig = rollout_sigmas(pipe, 3)
    ch = rollout_chunk(pipe, _t2i(2) * 2, sigmas=sig, noise_level=0.7, guidance_scale=4.0,
                       generator=torch.Generator().manual_seed(1))
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    for j in range(3):
        out = grpo_step_loss(pipe, ch, j, adv, torch.ones(4, dtype=torch.bool), noise_level=0.7, guidance_scale=4.0,
                             clip_range=1e-4, kl_beta=0.04)
        assert torch.equal(out.ratio, torch.ones(4)), out.ratio
        assert torch.equal(out.log_prob, ch.log_probs[:, j])
        assert float(out.kl) == 0.0 and out.clipfrac == 0.0
    out.loss.backward()
    grads = [p.grad for n, p in pipe.transformer.named_parameters() if "lora_" in n]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for n, p in pipe.transformer.named_parameters() if "lora_" not in n)


def test_kl_positive_once_lora_moves_and_merge_keeps_the_policy(pipe):
    add_lora(pipe.transformer, LoRAConfig(rank=4, alpha=8))
    with torch.no_grad():
        for n, p in pipe.transformer.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    sig = rollout_sigmas(pipe, 3)
    ch = rollout_chunk(pipe, _t2i(2), sigmas=sig, noise_level=0.7, guidance_scale=4.0,
                       generator=torch.Generator().manual_seed(2))
    out = grpo_step_loss(pipe, ch, 1, torch.tensor([1.0, -1.0]), torch.ones(2, dtype=torch.bool), noise_level=0.7,
                         guidance_scale=4.0, clip_range=1e-4, kl_beta=0.04)
    assert float(out.kl) > 0
    x, t = ch.latents[:, 1], torch.full((2,), float(sig[1]) * 1000)
    with torch.no_grad():
        before = pipe.predict_velocity(x, t, ch.embeds, None, None, 4.0)
        merge_lora(pipe.transformer)
        after = pipe.predict_velocity(x, t, ch.embeds, None, None, 4.0)
    assert not any("lora" in k for k in pipe.transformer.state_dict())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_editing_rollout_passes_the_reference_at_every_step(pipe):
    seen = []
    real = pipe.predict_velocity

    def spy(latents, t, embeds, pooled, ref_latents, guidance_scale):
        seen.append(ref_latents)
        return real(latents, t, embeds, pooled, ref_latents, guidance_scale)

    pipe.predict_velocity = spy
    conds = _edit(2)
    sig = rollout_sigmas(pipe, 4)
    ch = rollout_chunk(pipe, conds, sigmas=sig, noise_level=0.7, guidance_scale=4.0,
                       generator=torch.Generator().manual_seed(0))
    expected = pipe.encode_image([c.source for c in conds])
    assert len(seen) == 4
    for ref in seen:
        assert ref is not None and torch.equal(ref, expected)
    assert torch.equal(ch.ref_latents, expected)
    assert ch.keys == [("make", 0), ("make", 1)]


def test_group_size_must_divide_the_batch():
    with pytest.raises(ValueError, match="rollout_batch_size=6 is not a multiple of group_size=4"):
        GRPOConfig(group_size=4, rollout_batch_size=6)
    with pytest.raises(ValueError, match="prompts_per_round=3"):
        RLConfig(grpo={"group_size": 4, "rollout_batch_size": 8}, t2i={"prompts_per_round": 3})


class _MeanReward:
    """A deterministic reward with variance inside groups: brightness of the image."""

    name = "mean"

    def __init__(self, nan_rounds=()):
        self.calls = 0
        self.nan_rounds = set(nan_rounds)

    def __call__(self, batch):
        self.calls += 1
        import numpy as np

        s = torch.tensor([float(np.asarray(im).mean()) / 255 for im in batch.images])
        if self.calls in self.nan_rounds:
            s = torch.full_like(s, float("nan"))
        return RewardResult(scores=s, components={"brightness": s})


def _trainer(pipe, tmp_path, steps=2, reward=None, **grpo):
    stage = RLStageConfig(steps=steps, prompts_per_round=2, checkpoint_every=1, fused_adamw=False)
    g = GRPOConfig(group_size=2, rollout_batch_size=2, num_steps=3, eval_num_steps=3, guidance_scale=2.0,
                   lora=LoRAConfig(rank=4, alpha=8), **grpo)
    data = PromptSource(_t2i(3), per_round=2, seed=0)
    return FlowGRPOTrainer(stage, g, pipe, reward or _MeanReward(), data, tmp_path, task="t2i",
                           eval_conditions=_t2i(2))


def test_trainer_rounds_update_lora_only_and_log_grpo_metrics(pipe, tmp_path):
    base = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    tr = _trainer(pipe, tmp_path)
    res = tr.train()
    recs = tr.metrics.read()
    assert [r["step"] for r in recs] == [1, 2]
    for r in recs:
        assert r["ratio_dev_first_minibatch"] == 0.0
        assert r["optimizer_steps"] == 2.0
        for key in ("reward/mean", "reward/brightness", "kl", "clipfrac", "zero_std_ratio", "time_rollout_s",
                    "time_forward_s", "time_backward_s"):
            assert key in r, key
    state = pipe.transformer.state_dict()
    lora = [k for k in state if "lora_B" in k]
    assert lora and any(state[k].abs().sum() > 0 for k in lora)
    for k, v in base.items():
        key = k.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(state.get(k, state.get(key)), v)
    assert res.checkpoint is not None and res.sample_grids


def test_trainer_resume_is_exact(base_pipe, tmp_path):
    full = _trainer(copy.deepcopy(base_pipe), tmp_path / "full", steps=3)
    full.train()
    a = _trainer(copy.deepcopy(base_pipe), tmp_path / "part", steps=1)
    a.train()
    b = _trainer(copy.deepcopy(base_pipe), tmp_path / "part", steps=3)
    b.train(resume=True)
    full_recs = {r["step"]: r for r in full.metrics.read()}
    part_recs = {r["step"]: r for r in b.metrics.read()}
    for step in (2, 3):
        assert part_recs[step]["loss"] == full_recs[step]["loss"]
        assert part_recs[step]["reward/mean"] == full_recs[step]["reward/mean"]


def test_nan_rewards_skip_rounds_and_too_many_fail(base_pipe, pipe, tmp_path):
    tr = _trainer(pipe, tmp_path, steps=3, reward=_MeanReward(nan_rounds={2}), max_bad_rounds=1)
    tr.train()
    recs = tr.metrics.read()
    assert recs[1].get("skipped_round") == 1.0 and recs[-1]["count/skipped_rounds"] == 1.0
    assert recs[2]["optimizer_steps"] == 2.0
    tr2 = _trainer(copy.deepcopy(base_pipe), tmp_path / "b", steps=3, reward=_MeanReward(nan_rounds={1, 2}),
                   max_bad_rounds=1)
    with pytest.raises(UniPicError, match="max_bad_rounds=1"):
        tr2.train()


def test_zero_variance_groups_contribute_nothing():
    adv = compute_advantages(torch.tensor([0.3, 0.3, 1.0, 0.0]), ["a", "a", "b", "b"])
    assert adv.keep.tolist() == [False, False, True, True]


def test_full_finetuning_keeps_a_frozen_reference(base_pipe, tmp_path):
    pipe = copy.deepcopy(base_pipe)
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    stage = RLStageConfig(steps=1, prompts_per_round=2, checkpoint_every=0, fused_adamw=False)
    g = GRPOConfig(group_size=2, rollout_batch_size=2, num_steps=3, eval_num_steps=3, guidance_scale=2.0,
                   lora=LoRAConfig(enabled=False))
    tr = FlowGRPOTrainer(stage, g, pipe, _MeanReward(), PromptSource(_t2i(3), per_round=2), tmp_path, task="t2i")
    assert tr.ref_transformer is not None and tr.ref_transformer is not pipe.transformer
    assert not any(p.requires_grad for p in tr.ref_transformer.parameters())
    tr.train()
    rec = tr.metrics.read()[0]
    assert rec["ratio_dev_first_minibatch"] == 0.0 and rec["optimizer_steps"] == 2.0
    after = pipe.transformer.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items())
    assert all(torch.equal(tr.ref_transformer.state_dict()[k], v) for k, v in before.items())


class _DownReward:
    name = "down"

    def __call__(self, batch):
        from unipic.rl.rewards.http import RewardServerError

        raise RewardServerError("VLM judge at http://127.0.0.1:1: 4 of 4 requests failed after retries (connection)")


def test_reward_server_down_fails_or_skips_per_config(base_pipe, tmp_path):
    tr = _trainer(copy.deepcopy(base_pipe), tmp_path / "fail", steps=1, reward=_DownReward())
    with pytest.raises(UniPicError, match="failed after retries"):
        tr.train()
    tr = _trainer(copy.deepcopy(base_pipe), tmp_path / "skip", steps=2, reward=_DownReward(), max_bad_rounds=5)
    tr.cfg.reward.on_error = "skip"
    tr.train()
    recs = tr.metrics.read()
    assert [r.get("skipped_round") for r in recs] == [1.0, 1.0] and recs[-1]["count/skipped_rounds"] == 2.0


def test_nan_log_probs_skip_the_round(base_pipe, tmp_path):
    tr = _trainer(copy.deepcopy(base_pipe), tmp_path, steps=1)
    real = tr.sample

    def poisoned(conditions):
        chunks = real(conditions)
        chunks[0].log_probs[0, 0] = float("nan")
        return chunks

    tr.sample = poisoned
    tr.train()
    rec = tr.metrics.read()[0]
    assert rec["skipped_round"] == 1.0 and rec["count/skipped_rounds"] == 1.0


def test_score_task_reports_scores_with_standard_error(pipe):
    from unipic.rl.evaluate import score_task

    res = score_task(pipe, "t2i", _t2i(2), steps=2, guidance=2.0, seeds=2, batch_size=4)
    assert res.n == 4 and len(res.images) == 4
    assert 0.0 <= res.cleanliness <= 1.0 and res.score_se >= 0.0
    assert set(res.to_dict()) == {"n", "score", "score_se", "accuracy", "cleanliness"}


def test_optional_ema_tracks_the_lora_weights(base_pipe, tmp_path):
    tr = _trainer(copy.deepcopy(base_pipe), tmp_path, steps=1)
    assert tr.ema is None
    stage = RLStageConfig(steps=1, prompts_per_round=2, checkpoint_every=0, fused_adamw=False, ema_decay=0.5,
                          ema_every=1)
    g = GRPOConfig(group_size=2, rollout_batch_size=2, num_steps=3, eval_num_steps=3, guidance_scale=2.0,
                   lora=LoRAConfig(rank=4, alpha=8))
    pipe = copy.deepcopy(base_pipe)
    tr = FlowGRPOTrainer(stage, g, pipe, _MeanReward(), PromptSource(_t2i(3), per_round=2), tmp_path / "ema")
    tr.train()
    assert tr.ema is not None and tr.ema.shadow and all("lora_" in k for k in tr.ema.shadow)
    live = dict(pipe.transformer.named_parameters())
    moved = [k for k in tr.ema.shadow if "lora_B" in k and live[k].abs().sum() > 0]
    assert moved and all(torch.allclose(tr.ema.shadow[k], 0.5 * live[k]) for k in moved)
