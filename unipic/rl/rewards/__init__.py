"""Rewards behind one batched interface (`Reward`: `RewardBatch` -> `RewardResult`), composable with weights."""

from __future__ import annotations

from unipic.rl.rewards.base import Reward, RewardBatch, RewardError, RewardResult, WeightedSum, to_pil


def build_reward(cfg) -> WeightedSum:
    """The weighted sum named by `reward.weights` (a `unipic.config.rl.RewardConfig`)."""
    parts = {}
    for name, weight in cfg.weights.items():
        if weight == 0:
            continue
        if name == "shapes_t2i":
            from unipic.rl.rewards.shapes import ShapesT2IReward

            parts[name] = (ShapesT2IReward(cfg.cleanliness_weight), weight)
        elif name == "shapes_edit":
            from unipic.rl.rewards.shapes import ShapesEditReward

            parts[name] = (ShapesEditReward(cfg.cleanliness_weight), weight)
        elif name == "vlm_judge":
            from unipic.rl.rewards.http import VLMJudgeReward

            parts[name] = (VLMJudgeReward.from_config(cfg.vlm_judge), weight)
        elif name == "kserve_scorer":
            from unipic.rl.rewards.http import KServeScorerReward

            parts[name] = (KServeScorerReward.from_config(cfg.kserve_scorer), weight)
        else:  # pragma: no cover - the config's Literal forbids it
            raise RewardError(f"unknown reward '{name}'")
    return WeightedSum(parts)


__all__ = ["Reward", "RewardBatch", "RewardError", "RewardResult", "WeightedSum", "build_reward", "to_pil"]
