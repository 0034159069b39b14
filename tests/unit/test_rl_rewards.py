"""Rewards: ShapesWorld rule rewards on exact renders, noise penalised by cleanliness, weighted composition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from unipic.config.rl import RewardConfig
from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene, SceneObject, side_px
from unipic.rl.rewards import RewardBatch, RewardError, RewardResult, WeightedSum, build_reward
from unipic.rl.rewards.shapes import ShapesEditReward, ShapesT2IReward

S = 32


def _scene(*objs: tuple[str, str, int, int]) -> Image.Image:
    side = side_px("large", S)
    objects = [SceneObject(shape=sh, color=c, size="large", bbox=(x, y, x + side, y + side)) for sh, c, x, y in objs]
    return Image.fromarray(render(Scene(size=S, objects=objects)))


def _noisy(img: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    arr = np.asarray(img).astype(np.float32)
    arr += np.random.default_rng(seed).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))


def test_t2i_reward_exact_wrong_and_noisy():
    red_circle = _scene(("circle", "red", 4, 4))
    blue_square = _scene(("square", "blue", 4, 4))
    batch = RewardBatch(images=[red_circle, blue_square, _noisy(red_circle, 4.0)], prompts=["a red circle"] * 3)
    res = ShapesT2IReward(cleanliness_weight=0.5)(batch)
    assert res.components["exact"].tolist() == [1.0, 0.0, 1.0]
    assert float(res.scores[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(res.scores[1]) < 0.5
    # the detector still finds the exact object in the noisy image, but the reward is lower
    assert float(res.components["cleanliness"][2]) < 0.9
    assert float(res.scores[2]) < float(res.scores[0]) - 0.05
    unpenalised = ShapesT2IReward(cleanliness_weight=0.0)(batch)
    assert float(unpenalised.scores[2]) == pytest.approx(1.0)


def test_edit_reward_is_success_times_preservation():
    src = _scene(("circle", "red", 3, 3), ("square", "green", 18, 18))
    good = _scene(("circle", "blue", 3, 3), ("square", "green", 18, 18))
    lost_square = _scene(("circle", "blue", 3, 3))
    unchanged = src
    batch = RewardBatch(images=[good, lost_square, unchanged], prompts=["make the red circle blue"] * 3,
                        sources=[src] * 3)
    res = ShapesEditReward()(batch)
    assert res.components["success"].tolist() == [1.0, 1.0, 0.0]
    assert float(res.components["preservation"][0]) == 1.0
    assert float(res.components["preservation"][1]) < 1.0
    torch.testing.assert_close(res.scores, res.components["success"] * res.components["preservation"])
    with pytest.raises(RewardError, match="source"):
        ShapesEditReward()(RewardBatch(images=[good], prompts=["make the red circle blue"]))


class _Const:
    def __init__(self, name, values, counts=None):
        self.name, self.values, self.counts = name, values, counts or {}

    def __call__(self, batch):
        return RewardResult(scores=torch.tensor(self.values), components={"raw": torch.tensor(self.values)},
                            counts=dict(self.counts))


def test_weighted_sum_keeps_components_and_propagates_nan():
    img = _scene(("circle", "red", 4, 4))
    batch = RewardBatch(images=[img] * 3, prompts=["x"] * 3)
    combo = WeightedSum({"a": (_Const("a", [1.0, 0.0, 1.0]), 0.5),
                         "b": (_Const("b", [2.0, math.nan, 0.0], {"unparseable": 1}), 2.0)})
    res = combo(batch)
    assert res.scores[0] == pytest.approx(4.5) and res.scores[2] == pytest.approx(0.5)
    assert math.isnan(float(res.scores[1]))
    assert set(res.components) == {"a", "a/raw", "b", "b/raw"}
    assert res.counts == {"b/unparseable": 1}
    summary = res.summary()
    assert summary["reward/invalid"] == 1.0 and summary["reward/b/unparseable"] == 1.0


def test_build_reward_from_config_and_missing_url():
    cfg = RewardConfig(weights={"shapes_t2i": 1.0, "shapes_edit": 0.0})
    reward = build_reward(cfg)
    assert list(reward.parts) == ["shapes_t2i"]
    with pytest.raises(RewardError, match="vlm_judge.url"):
        build_reward(RewardConfig(weights={"vlm_judge": 1.0}))


def test_batch_length_mismatch_is_an_error():
    with pytest.raises(RewardError, match="prompts"):
        RewardBatch(images=[_scene()], prompts=["a", "b"])


def test_rewards_use_the_structured_spec_when_the_sample_has_one():
    from unipic.config.data import ShapesConfig
    from unipic.data.shapes import make_edit_sample, make_t2i_sample

    cfg = ShapesConfig(image_size=S)
    t = make_t2i_sample(cfg, 3)
    truth = Image.fromarray(render(t.scene))
    blank = Image.fromarray(render(Scene(size=S)))
    res = ShapesT2IReward()(RewardBatch(images=[truth, blank], prompts=[t.caption] * 2,
                                        metas=[{"spec": t.spec.model_dump()}] * 2))
    assert res.components["exact"].tolist() == [1.0, 0.0]
    e = make_edit_sample(cfg, 5)
    src, tgt = Image.fromarray(render(e.source)), Image.fromarray(render(e.target))
    res = ShapesEditReward()(RewardBatch(images=[tgt, src], prompts=[e.instruction] * 2, sources=[src, src],
                                         metas=[{"spec": e.spec.model_dump()}] * 2))
    assert float(res.scores[0]) == pytest.approx(1.0)
    assert float(res.components["success"][1]) == 0.0


def test_edit_stage_reward_defaults_survive_partial_overrides():
    from unipic.config import load_config

    cfg = load_config("ci", ["rl.edit.reward.cleanliness_weight=0.5"])
    assert cfg.rl.edit.reward.weights == {"shapes_edit": 1.0} and cfg.rl.edit.reward.cleanliness_weight == 0.5
    assert cfg.rl.t2i.reward.weights == {"shapes_t2i": 1.0}
