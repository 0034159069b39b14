"""Remote rewards: a VLM judge over OpenAI-compatible chat completions (VIEScore prompts) and a scorer over
KServe V2. Both wrap the evaluation clients in `unipic.judges` (timeouts, bounded retries and concurrency,
strict parsing live there).

Two kinds of failure are kept apart. An answer that cannot be parsed or is out of range is one sample's
problem: its score is NaN, it is excluded from its group and counted. A transport failure after all retries
(timeout, connection refused, 5xx) means the server is down or overloaded: the whole call raises
`RewardServerError`, and the trainer fails the round or skips it (`reward.on_error`), never scoring 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from unipic.rl.rewards.base import RewardBatch, RewardError, RewardResult

TRANSPORT_KINDS = {"timeout", "connection", "http_5xx", "http_429", "http_4xx"}


class RewardServerError(RewardError):
    """The reward server did not answer after the configured retries."""


def _check_transport(verdicts: Sequence, url: str, what: str) -> None:
    failed = [v for v in verdicts if not v.ok and v.error in TRANSPORT_KINDS]
    if failed:
        v = failed[0]
        raise RewardServerError(
            f"{what} at {url}: {len(failed)} of {len(verdicts)} requests failed after retries ({v.error}: "
            f"{v.detail}); check that the server is up, or raise its timeout_s/retries, or set "
            f"reward.on_error=skip to skip such rounds"
        )


def _nan_counts(verdicts: Sequence) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in verdicts:
        if not v.ok:
            counts[v.error or "unparseable"] = counts.get(v.error or "unparseable", 0) + 1
    return counts


class VLMJudgeReward:
    """VIEScore through a VLM judge: editing -> SC (min of [success, over-editing]) with source + edit;
    text-to-image -> SC of the caption. Optionally x PQ (geometric mean, VIEScore's overall). Scaled to [0, 1]."""

    name = "vlm_judge"

    def __init__(self, judge, *, with_pq: bool = False):
        self.judge = judge
        self.with_pq = with_pq

    @classmethod
    def from_config(cls, cfg) -> VLMJudgeReward:
        from unipic.judges.http import api_key_from_env
        from unipic.judges.openai_vlm import OpenAIVLMJudge

        if not cfg.url:
            raise RewardError("reward weight 'vlm_judge' is set but reward.vlm_judge.url is empty; set it to the "
                              "judge server's base URL (e.g. http://127.0.0.1:8000/v1)")
        judge = OpenAIVLMJudge(cfg.url, cfg.model, api_key=api_key_from_env(cfg.api_key_env), timeout_s=cfg.timeout_s,
                               max_retries=cfg.retries, concurrency=cfg.max_concurrency)
        return cls(judge)

    def __call__(self, batch: RewardBatch) -> RewardResult:
        editing = batch.sources[0] is not None
        if editing:
            reqs = [self.judge.edit_sc_request(s, im, p) for im, p, s in zip(batch.images, batch.prompts, batch.sources)]
        else:
            reqs = [self.judge.t2i_sc_request(im, p) for im, p in zip(batch.images, batch.prompts)]
        if self.with_pq:
            reqs += [self.judge.pq_request(im) for im in batch.images]
        verdicts = self.judge.judge_many(reqs)
        _check_transport(verdicts, self.judge.base_url, "VLM judge")
        n = len(batch)
        sc = torch.tensor([min(v.scores) / 10.0 if v.ok else math.nan for v in verdicts[:n]])
        comps = {"sc": sc}
        scores = sc
        if self.with_pq:
            pq = torch.tensor([min(v.scores) / 10.0 if v.ok else math.nan for v in verdicts[n:]])
            comps["pq"] = pq
            scores = torch.sqrt(sc * pq)
        return RewardResult(scores=scores.float(), components={k: v.float() for k, v in comps.items()},
                            counts=_nan_counts(verdicts))


class KServeScorerReward:
    """A scorer model (e.g. an EditReward regression head) behind KServe V2: one score in [0, 1] per image,
    sent with the prompt/instruction and, for edits, the source image."""

    name = "kserve_scorer"

    def __init__(self, scorer):
        self.scorer = scorer

    @classmethod
    def from_config(cls, cfg) -> KServeScorerReward:
        from unipic.judges.kserve_v2 import KServeV2Scorer

        if not cfg.url:
            raise RewardError("reward weight 'kserve_scorer' is set but reward.kserve_scorer.url is empty; set it to "
                              "the KServe base URL (e.g. http://127.0.0.1:8080)")
        return cls(KServeV2Scorer(cfg.url, cfg.model, timeout_s=cfg.timeout_s, max_retries=cfg.retries,
                                  concurrency=cfg.max_concurrency))

    def __call__(self, batch: RewardBatch) -> RewardResult:
        sources = list(batch.sources) if batch.sources[0] is not None else None
        verdicts = self.scorer.score(batch.images, texts=list(batch.prompts), sources=sources)
        _check_transport(verdicts, self.scorer.url, "KServe V2 scorer")
        scores = torch.tensor([v.scores[0] if v.ok else math.nan for v in verdicts])
        return RewardResult(scores=scores.float(), components={"score": scores.float()}, counts=_nan_counts(verdicts))
