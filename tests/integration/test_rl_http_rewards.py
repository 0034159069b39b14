"""HTTP rewards against the local judge server (OpenAI chat completions + KServe V2 on 127.0.0.1)."""

from __future__ import annotations

import math
import socket

import pytest
from PIL import Image

from unipic.config.rl import HTTPRewardConfig
from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene, SceneObject, side_px
from unipic.judges.local_server import Faults, LocalJudgeServer
from unipic.rl.rewards import RewardBatch
from unipic.rl.rewards.http import KServeScorerReward, RewardServerError, VLMJudgeReward

S = 32


def _scene(*objs):
    side = side_px("large", S)
    objects = [SceneObject(shape=sh, color=c, size="large", bbox=(x, y, x + side, y + side)) for sh, c, x, y in objs]
    return Image.fromarray(render(Scene(size=S, objects=objects)))


@pytest.fixture()
def server():
    with LocalJudgeServer() as srv:
        yield srv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vlm_judge_reward_t2i_and_edit(server):
    reward = VLMJudgeReward.from_config(HTTPRewardConfig(url=server.openai_base_url, model="shapesworld-judge",
                                                         retries=1, timeout_s=10))
    good, bad = _scene(("circle", "red", 4, 4)), _scene(("square", "blue", 4, 4))
    res = reward(RewardBatch(images=[good, bad], prompts=["a red circle"] * 2))
    assert float(res.scores[0]) == pytest.approx(1.0) and float(res.scores[1]) < 0.5
    src = _scene(("circle", "red", 4, 4))
    edited = _scene(("circle", "blue", 4, 4))
    res = reward(RewardBatch(images=[edited, src], prompts=["make the red circle blue"] * 2, sources=[src, src]))
    assert float(res.scores[0]) == pytest.approx(1.0) and float(res.scores[1]) == 0.0
    assert server.stats()["by_kind"]  # the requests really went over HTTP


def test_unparseable_answers_are_nan_and_counted(server):
    server.faults.update({"garbage_rate": 1.0})
    reward = VLMJudgeReward.from_config(HTTPRewardConfig(url=server.openai_base_url, retries=0))
    reward.judge.reask_unparseable = 0
    res = reward(RewardBatch(images=[_scene(("circle", "red", 4, 4))] * 2, prompts=["a red circle"] * 2))
    assert all(math.isnan(float(s)) for s in res.scores)
    assert res.counts == {"unparseable": 2}


def test_kserve_scorer_reward(server):
    reward = KServeScorerReward.from_config(HTTPRewardConfig(url=server.base_url, model="shapesworld-scorer"))
    src = _scene(("circle", "red", 4, 4))
    res = reward(RewardBatch(images=[_scene(("circle", "blue", 4, 4)), src], prompts=["make the red circle blue"] * 2,
                             sources=[src, src]))
    assert res.scores.tolist() == [1.0, 0.0]


def test_server_down_raises_after_bounded_retries():
    url = f"http://127.0.0.1:{_free_port()}"
    reward = KServeScorerReward.from_config(HTTPRewardConfig(url=url, retries=1, timeout_s=2))
    with pytest.raises(RewardServerError, match="retries"):
        reward(RewardBatch(images=[_scene(("circle", "red", 4, 4))], prompts=["a red circle"]))


def test_server_errors_raise_not_zero(server):
    server.faults.update({"error_rate": 1.0})
    reward = VLMJudgeReward.from_config(HTTPRewardConfig(url=server.openai_base_url, retries=1))
    reward.judge.policy = type(reward.judge.policy)(1, 0.01, 0.02)
    with pytest.raises(RewardServerError, match="http_5xx"):
        reward(RewardBatch(images=[_scene(("circle", "red", 4, 4))], prompts=["a red circle"]))
