"""The real judge clients against the real local judge server (loopback HTTP, ShapesWorld detector)."""

import time

import numpy as np
import pytest

from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene, SceneObject
from unipic.judges import JudgeError, JudgeRequest, KServeV2Scorer, OpenAIVLMJudge, rubric_parser
from unipic.judges.local_server import Faults, LocalJudgeServer

S = 64


def scene(*objs, background="white"):
    return Scene(size=S, background=background, objects=[SceneObject(shape=s, color=c, size="medium", bbox=b)
                                                         for s, c, b in objs])


RED_CIRCLE = ("circle", "red", (6, 6, 24, 24))
BLUE_SQUARE = ("square", "blue", (36, 36, 54, 54))
SRC = render(scene(RED_CIRCLE, BLUE_SQUARE))
RECOLORED = render(scene(("circle", "green", (6, 6, 24, 24)), BLUE_SQUARE))


@pytest.fixture(scope="module")
def server():
    with LocalJudgeServer() as srv:
        yield srv


@pytest.fixture
def faults(server):
    yield server.faults
    server.faults.update({k: type(v)() for k, v in Faults().__dict__.items()})
    server.faults.hang_s = 5.0
    server.faults.retry_after_s = 0.0


def judge(server, **kw):
    kw.setdefault("backoff_s", 0.01)
    return OpenAIVLMJudge(server.openai_base_url, "shapesworld-judge", **kw)


def test_viescore_edit_right_and_wrong(server):
    with judge(server) as j:
        right, untouched, wrong_obj = j.viescore_edit(
            [SRC, SRC, SRC], [RECOLORED, SRC, render(scene(RED_CIRCLE, ("square", "green", (36, 36, 54, 54))))],
            ["make the red circle green"] * 3)
    res, sc, pq = right
    assert sc.ok and pq.ok and sc.scores == [10, 10] and pq.scores == [10, 10]
    assert res.overall == pytest.approx(10.0)
    assert untouched[1].scores[0] == 0 and untouched[0].overall == 0
    assert wrong_obj[1].scores[0] == 0 and wrong_obj[1].scores[1] < 10
    assert j.stats.to_dict()["excluded"] == 0 and j.stats.requests == 6


def test_t2i_sc_and_pq_see_the_image(server):
    noisy = np.clip(SRC.astype(int) + np.random.default_rng(0).normal(0, 12, SRC.shape), 0, 255).astype(np.uint8)
    with judge(server) as j:
        vs = j.judge_many([
            j.t2i_sc_request(SRC, "a red circle and a blue square"),
            j.t2i_sc_request(SRC, "a red circle left of a blue square"),
            j.t2i_sc_request(SRC, "two green triangles"),
            j.pq_request(SRC), j.pq_request(noisy),
        ])
    assert [v.scores for v in vs[:3]] == [[10], [10], [0]]
    assert vs[3].scores == [10, 10] and max(vs[4].scores) < 8


def test_garbage_answers_are_counted_and_excluded_never_scored(server, faults):
    faults.garbage_rate = 1.0
    with judge(server, reask_unparseable=1) as j:
        vs = j.judge_many([j.t2i_sc_request(SRC, "a red circle") for _ in range(3)])
    assert all(not v.ok and v.scores is None and v.error == "unparseable" for v in vs)
    st = j.stats.to_dict()
    assert st["excluded"] == 3 and st["failures"]["unparseable"] == 3 and st["reasks"] == 3
    assert server.stats()["faults_served"]["garbage"] >= 6


def test_out_of_range_answers_are_excluded(server, faults):
    faults.out_of_range_rate = 1.0
    with judge(server, reask_unparseable=0) as j:
        v = j.judge(j.edit_sc_request(SRC, RECOLORED, "make the red circle green"))
    assert not v.ok and v.error == "out_of_range" and j.stats.failures["out_of_range"] == 1


def test_5xx_is_retried_with_backoff_then_succeeds(server, faults):
    before = server.stats()["requests"]
    faults.fail_first = before + 2
    with judge(server, max_retries=3) as j:
        v = j.judge(j.pq_request(SRC))
    assert v.ok and v.attempts == 3 and j.stats.retries == 2


def test_retry_after_is_honoured_up_to_the_backoff_cap(server, faults):
    faults.fail_first, faults.retry_after_s = server.stats()["requests"] + 1, 0.4
    t0 = time.perf_counter()
    with judge(server, max_retries=2, backoff_s=0.01, max_backoff_s=1.0) as j:
        assert j.judge(j.pq_request(SRC)).ok
    assert time.perf_counter() - t0 >= 0.4


def test_retries_are_bounded(server, faults):
    faults.error_rate = 1.0
    before = server.stats()["requests"]
    with judge(server, max_retries=2) as j:
        v = j.judge(j.pq_request(SRC))
    assert not v.ok and v.error == "http_5xx" and v.attempts == 3
    assert server.stats()["requests"] - before == 3


def test_timeouts_are_bounded_and_excluded(server, faults):
    faults.timeout_rate, faults.hang_s = 1.0, 1.0
    t0 = time.perf_counter()
    with judge(server, timeout_s=0.2, max_retries=1) as j:
        v = j.judge(j.pq_request(SRC))
    assert not v.ok and v.error == "timeout" and v.attempts == 2
    assert time.perf_counter() - t0 < 1.5


def test_concurrency_is_bounded():
    with LocalJudgeServer(faults=Faults(delay_s=0.5)) as srv:
        with OpenAIVLMJudge(srv.openai_base_url, "shapesworld-judge", concurrency=3) as j:
            vs = j.judge_many([j.pq_request(SRC) for _ in range(9)])
        peak = srv.stats()["max_in_flight"]
    assert all(v.ok for v in vs)
    assert 2 <= peak <= 3


def test_api_key_and_model_errors_fail_the_run_clearly(monkeypatch):
    with LocalJudgeServer(api_key="s3cret") as srv:
        with OpenAIVLMJudge(srv.openai_base_url, "shapesworld-judge") as j, pytest.raises(JudgeError, match="credentials"):
            j.judge(j.pq_request(SRC))
        with OpenAIVLMJudge(srv.openai_base_url, "gpt-9", api_key="s3cret") as j, pytest.raises(JudgeError, match="404"):
            j.judge(j.pq_request(SRC))
        monkeypatch.setenv("UNIPIC_JUDGE_API_KEY", "s3cret")
        from unipic.config.evaluation import JudgeConfig

        cfg = JudgeConfig(base_url=srv.openai_base_url, model="shapesworld-judge")
        with OpenAIVLMJudge.from_config(cfg) as j:
            assert j.judge(j.pq_request(SRC)).ok


def test_unreachable_endpoint_is_a_connection_failure():
    with OpenAIVLMJudge("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=0.5) as j:
        v = j.judge(j.pq_request(SRC))
    assert not v.ok and v.error == "connection"


def test_rubric_request_answers_in_imgedit_format(server):
    dims = ["Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"]
    rubric = ("Rate the edit.\nExample Response Format:\nBrief reasoning: short.\n"
              + "".join(f"{d}: A number from 1 to 5.\n" for d in dims)
              + "editing instruction is : make the red circle green.\n")
    with judge(server) as j:
        good = j.judge(JudgeRequest(rubric, [SRC, RECOLORED], rubric_parser(dims)))
        bad = j.judge(JudgeRequest(rubric, [SRC, SRC], rubric_parser(dims)))
    assert good.ok and good.scores == [5, 5, 5]
    assert bad.ok and bad.scores[0] == 1 and max(bad.scores[1:]) <= 1


def test_kserve_v2_scorer_batches_and_scores(server, faults):
    before = server.stats()["by_kind"].get("infer", 0)
    with KServeV2Scorer(server.base_url, "shapesworld-scorer", batch_size=2, backoff_s=0.01) as sc:
        vs = sc.score([RECOLORED, SRC, RECOLORED, SRC, RECOLORED], ["make the red circle green"] * 5,
                      [SRC] * 5)
        t2i = sc.score([SRC], ["a red circle and a blue square"])
    assert [v.scores[0] for v in vs] == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert t2i[0].scores == [1.0]
    assert server.stats()["by_kind"]["infer"] - before == 4


def test_kserve_v2_garbage_and_out_of_range_are_excluded(server, faults):
    with KServeV2Scorer(server.base_url, "shapesworld-scorer", backoff_s=0.01) as sc:
        faults.garbage_rate = 1.0
        a = sc.score([SRC, SRC], ["a red circle"] * 2)
        faults.garbage_rate, faults.out_of_range_rate = 0.0, 1.0
        b = sc.score([SRC], ["a red circle"])
    assert [v.error for v in a] == ["unparseable", "unparseable"] and b[0].error == "out_of_range"
    assert sc.stats.excluded == 3 and sc.stats.ok == 0


def test_kserve_v2_unknown_model_is_a_clear_error(server):
    with KServeV2Scorer(server.base_url, "nope") as sc, pytest.raises(JudgeError, match="404"):
        sc.score([SRC])


def test_kserve_v2_bad_request_is_excluded_as_4xx(server):
    import httpx

    bad = {"inputs": [{"name": "image", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    r = httpx.post(f"{server.base_url}/v2/models/shapesworld-scorer/infer", json=bad)
    assert r.status_code == 400 and "BYTES" in r.json()["error"]
    with KServeV2Scorer(server.base_url, "shapesworld-scorer", backoff_s=0.01) as sc:
        sc._request = lambda images, texts, sources: bad  # a client sending the wrong datatype
        [v] = sc.score([SRC])
    assert not v.ok and v.error == "http_4xx" and "BYTES" in v.detail
