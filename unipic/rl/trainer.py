"""FlowGRPOTrainer: the base Trainer's loop, with one trainer step = one Flow-GRPO round.

A round: G SDE rollouts per prompt (CFG on, reference image in every step for editing) -> rewards ->
per-group advantages -> for each minibatch (= a rollout chunk, same batch shape) and each trained timestep, the
PPO-clipped loss + beta KL, gradients accumulated over `minibatches_per_step` chunks, then an optimizer step.
Everything random comes from the trainer's checkpointed generator, so resume is exact.

Failures that are not the model's fault are counted, not hidden: non-finite log-probs or rewards skip the round,
a non-finite loss skips the optimizer step, a reward server that stays down fails the stage or skips the round
(`reward.on_error`); more than `grpo.max_bad_rounds` skipped rounds in a row stop the stage.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch

from unipic.config.rl import GRPOConfig, RLStageConfig
from unipic.errors import UniPicError
from unipic.logging import get_logger
from unipic.rl.advantages import compute_advantages
from unipic.rl.loss import grpo_step_loss
from unipic.rl.lora import add_lora
from unipic.rl.prompts import PromptSource
from unipic.rl.rewards import RewardBatch, RewardError
from unipic.rl.rewards.http import RewardServerError
from unipic.rl.rollout import Condition, RolloutChunk, rollout_chunk, rollout_round, rollout_sigmas
from unipic.training.trainer import Trainer

log = get_logger(__name__)


class BadRound(Exception):
    """This round cannot be trained on (non-finite log-probs or rewards, reward server skipped)."""


class FlowGRPOTrainer(Trainer):
    def __init__(self, cfg: RLStageConfig, grpo: GRPOConfig, pipe: Any, reward: Any, data: PromptSource,
                 work_dir: Path, *, task: str = "t2i", eval_conditions: list[Condition] | None = None,
                 store_cfg: Any = None):
        self.section = f"rl.{task}"
        self.task = task
        self.grpo = grpo
        self.pipe = pipe
        self.reward = reward
        self.eval_conditions = eval_conditions or []
        self.ref_transformer: torch.nn.Module | None = None
        if grpo.lora.enabled:
            add_lora(pipe.transformer, grpo.lora)
        elif grpo.kl_beta > 0:
            self.ref_transformer = copy.deepcopy(pipe.transformer).requires_grad_(False).eval()
        for module in (getattr(pipe, n, None) for n in ("vae", "text_encoder", "text_encoder_2", "text_encoder_3")):
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False).eval()
        super().__init__(cfg, pipe.transformer, data, work_dir, store_cfg=store_cfg)
        self.sigmas = rollout_sigmas(pipe, grpo.num_steps)
        self.counters = {"skipped_rounds": 0, "skipped_steps": 0, "bad_in_a_row": 0, "invalid_rewards": 0}

    # ----- the round ------------------------------------------------------------------------------

    def sample(self, conditions: list[Condition]) -> list[RolloutChunk]:
        with torch.no_grad(), self.autocast():
            return rollout_round(self.pipe, conditions, group_size=self.grpo.group_size,
                                 batch_size=self.grpo.rollout_batch_size, sigmas=self.sigmas,
                                 noise_level=self.grpo.noise_level, guidance_scale=self.grpo.guidance_scale,
                                 generator=self.generator)

    def score(self, chunks: list[RolloutChunk]) -> tuple[torch.Tensor, dict[str, float]]:
        conds = [c for ch in chunks for c in ch.conditions]
        batch = RewardBatch(images=[im for ch in chunks for im in ch.images], prompts=[c.prompt for c in conds],
                            sources=[c.source for c in conds], metas=[c.meta for c in conds])
        try:
            res = self.reward(batch)
        except RewardServerError as exc:
            if self.cfg.reward.on_error == "skip":
                raise BadRound(f"reward server: {exc}") from None
            raise
        return res.scores.float(), res.summary("reward")

    def train_step(self, batch: list[Condition]) -> dict[str, float]:
        try:
            return self._round(batch)
        except BadRound as exc:
            self.counters["skipped_rounds"] += 1
            self.counters["bad_in_a_row"] += 1
            log.warning("%s round %d skipped: %s", self.section, self.step + 1, exc)
            if self.counters["bad_in_a_row"] > self.grpo.max_bad_rounds:
                raise UniPicError(
                    f"{self.section}: {self.counters['bad_in_a_row']} rounds in a row could not be trained on "
                    f"(last: {exc}); more than rl.grpo.max_bad_rounds={self.grpo.max_bad_rounds}. Fix the cause "
                    "(reward server, lower lr) and resume from the last checkpoint"
                ) from None
            return {"loss": 0.0, "lr": self.engine.lr, "grad_norm": 0.0, "tokens": 0, "samples": 0,
                    "skipped_round": 1.0, **{f"count/{k}": float(v) for k, v in self.counters.items()}}

    def _round(self, conditions: list[Condition]) -> dict[str, float]:
        g = self.grpo
        with self.spans("rollout"):
            chunks = self.sample(conditions)
        for ch in chunks:
            if not (torch.isfinite(ch.log_probs).all() and torch.isfinite(ch.latents).all()):
                raise BadRound("non-finite log-probs or latents in the rollout")
        with self.spans("reward"):
            rewards, reward_metrics = self.score(chunks)
        valid = torch.isfinite(rewards)
        self.counters["invalid_rewards"] += int((~valid).sum())
        if not valid.any():
            raise BadRound("no sample got a valid reward")
        keys = [k for ch in chunks for k in ch.keys]
        adv_all = torch.zeros(len(keys))
        keep_all = torch.zeros(len(keys), dtype=torch.bool)
        idx = valid.nonzero().flatten()
        adv = compute_advantages(rewards[idx], [keys[i] for i in idx.tolist()], std_mode=g.std_mode,
                                 clip=g.adv_clip_max)
        adv_all[idx], keep_all[idx] = adv.values, adv.keep

        n_t = g.num_train_timesteps
        bs = g.rollout_batch_size
        stats: dict[str, list[float]] = {"policy": [], "kl": [], "clipfrac": [], "approx_kl": [], "ratio_dev": []}
        grad_norms: list[float] = []
        first_ratio_dev = math.nan
        opt_steps = 0
        order = list(range(len(chunks)))
        for _ in range(g.inner_epochs):
            for s in range(0, len(order), g.minibatches_per_step):
                group = order[s:s + g.minibatches_per_step]
                live = [c for c in group if keep_all[c * bs:(c + 1) * bs].any()]
                if not live:
                    continue
                self.engine.zero_grad()
                finite = True
                for c in live:
                    sl_adv, sl_keep = adv_all[c * bs:(c + 1) * bs], keep_all[c * bs:(c + 1) * bs]
                    for j in range(n_t):
                        with self.spans("forward"), self.autocast():
                            out = grpo_step_loss(self.pipe, chunks[c], j, sl_adv, sl_keep, noise_level=g.noise_level,
                                                 guidance_scale=g.guidance_scale, clip_range=g.clip_range,
                                                 kl_beta=g.kl_beta, ref_transformer=self.ref_transformer)
                        if not torch.isfinite(out.loss):
                            finite = False
                            break
                        self.backward(out.loss / (len(live) * n_t))
                        dev = float((out.ratio[sl_keep] - 1).abs().max()) if sl_keep.any() else 0.0
                        if math.isnan(first_ratio_dev):
                            first_ratio_dev = dev
                        stats["policy"].append(float(out.policy))
                        stats["kl"].append(float(out.kl))
                        stats["clipfrac"].append(out.clipfrac)
                        stats["approx_kl"].append(out.approx_kl)
                        stats["ratio_dev"].append(dev)
                    if not finite:
                        break
                if not finite:
                    self.engine.zero_grad()
                    self.counters["skipped_steps"] += 1
                    log.warning("%s round %d: non-finite loss, optimizer step skipped", self.section, self.step + 1)
                    continue
                with self.spans("optimizer"):
                    grad_norms.append(self.engine.step())
                opt_steps += 1
        if self.ema is not None and (self.step + 1) % self.cfg.ema_every == 0:
            with self.spans("ema"), self.engine.gathered():
                self.ema.update(self.model)
        if opt_steps == 0 and adv.n_zero_std_groups < adv.n_groups:
            raise BadRound("every optimizer step of the round had a non-finite loss")
        self.counters["bad_in_a_row"] = 0
        mean = lambda v: sum(v) / len(v) if v else 0.0  # noqa: E731
        policy = mean(stats["policy"])
        return {
            "loss": policy + g.kl_beta * mean(stats["kl"]), "lr": self.engine.lr, "grad_norm": mean(grad_norms),
            "tokens": 0, "samples": len(keys), "policy_loss": policy, "kl": mean(stats["kl"]),
            "clipfrac": mean(stats["clipfrac"]), "approx_kl": mean(stats["approx_kl"]),
            "ratio_dev_mean": mean(stats["ratio_dev"]),
            "ratio_dev_first_minibatch": 0.0 if math.isnan(first_ratio_dev) else first_ratio_dev,
            "zero_std_ratio": adv.zero_std_ratio, "optimizer_steps": float(opt_steps),
            "reward_std": float(rewards[valid].std()) if int(valid.sum()) > 1 else 0.0,
            **reward_metrics, **{f"count/{k}": float(v) for k, v in self.counters.items()},
        }

    # ----- hooks ------------------------------------------------------------------------------------

    def sample_images(self) -> dict[str, list[Any]] | None:
        if not self.eval_conditions:
            return None
        gen = torch.Generator().manual_seed(1234)
        sig = rollout_sigmas(self.pipe, self.grpo.eval_num_steps)
        with torch.no_grad(), self.autocast():
            chunk = rollout_chunk(self.pipe, self.eval_conditions, sigmas=sig, noise_level=0.0,
                                  guidance_scale=self.grpo.eval_guidance_scale, generator=gen)
        return {"ode": chunk.images}

    def extra_state(self) -> dict[str, Any]:
        return {"counters": dict(self.counters)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.counters.update(state.get("counters", {}))

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"stage": self.section, "lora": self.grpo.lora.enabled}


__all__ = ["BadRound", "FlowGRPOTrainer", "RewardError"]
