"""A VLM judge over the OpenAI-compatible chat-completions protocol, with image inputs.

This is what vLLM and KServe's OpenAI route serve for Qwen2.5-VL, and what api.openai.com serves for
GPT-4.1 (GEdit-Bench's VIEScore judge) or GPT-4o (ImgEdit's judge). Images travel as base64 PNG data URLs
in `image_url` content parts. Answers are parsed strictly (see `unipic.judges.parsing`); an answer that
cannot be parsed, or is out of range, is asked again at most `reask_unparseable` times and then counted and
excluded. Nothing ever falls back to a random or zero score.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from unipic.judges import viescore
from unipic.judges.http import RetryPolicy, TransportFailure, api_key_from_env, post_json
from unipic.judges.images import ImageLike, data_url
from unipic.judges.parsing import ParseFailure, parse_rubric, parse_viescore
from unipic.judges.verdict import JudgeStats, Verdict
from unipic.logging import get_logger

log = get_logger(__name__)

Parser = Callable[[str], tuple[list[float], str]]


@dataclass
class JudgeRequest:
    """One question to the judge: the text, the images in order, and how to read the answer."""

    prompt: str
    images: Sequence[ImageLike]
    parser: Parser
    key: str | None = None
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def viescore_parser(kind: str) -> Parser:
    n = viescore.N_SCORES[kind]
    return lambda text: parse_viescore(text, n, 0.0, 10.0)


def rubric_parser(dimensions: Sequence[str], lo: int = 1, hi: int = 5) -> Parser:
    dims = list(dimensions)
    return lambda text: parse_rubric(text, dims, lo, hi)


class OpenAIVLMJudge:
    """Client for `POST {base_url}/chat/completions`. Thread-safe; `judge_many` runs up to `concurrency`
    requests at once and returns verdicts in input order."""

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 30.0,
        max_retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0, concurrency: int = 8,
        reask_unparseable: int = 1, temperature: float = 0.0, max_tokens: int = 512,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.policy = RetryPolicy(max_retries, backoff_s, max_backoff_s)
        self.concurrency = concurrency
        self.reask_unparseable = reask_unparseable
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.stats = JudgeStats()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s), headers=headers,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    @classmethod
    def from_config(cls, cfg: Any) -> OpenAIVLMJudge:
        """Build from `unipic.config.evaluation.JudgeConfig`; the key is read from `cfg.api_key_env`."""
        return cls(
            cfg.base_url, cfg.model, api_key=api_key_from_env(cfg.api_key_env), timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries, backoff_s=cfg.backoff_s, max_backoff_s=cfg.max_backoff_s,
            concurrency=cfg.concurrency, reask_unparseable=cfg.reask_unparseable,
            temperature=cfg.temperature, max_tokens=cfg.max_tokens,
        )

    @property
    def identity(self) -> dict[str, str]:
        """Recorded with every result: scores from different judges are not comparable."""
        return {"protocol": "openai-chat-completions", "base_url": self.base_url, "model": self.model}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIVLMJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _payload(self, req: JudgeRequest) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": req.prompt}]
        content += [{"type": "image_url", "image_url": {"url": data_url(img)}} for img in req.images]
        messages: list[dict[str, Any]] = []
        if req.system:
            messages.append({"role": "system", "content": req.system})
        messages.append({"role": "user", "content": content})
        return {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}

    def judge(self, req: JudgeRequest) -> Verdict:
        t0 = time.perf_counter()
        payload = self._payload(req)
        attempts = reasks = retries = 0
        verdict: Verdict | None = None
        for ask in range(self.reask_unparseable + 1):
            reasks = ask
            try:
                body, n = post_json(self._client, f"{self.base_url}/chat/completions", payload, self.policy)
                attempts += n
                retries += n - 1
            except TransportFailure as exc:
                attempts += exc.attempts
                retries += exc.attempts - 1
                verdict = Verdict(ok=False, error=exc.kind, detail=exc.detail, key=req.key)
                break
            text = _message_text(body)
            if text is None:
                verdict = Verdict(ok=False, error="unparseable", detail="response has no choices[0].message.content",
                                  raw=str(body)[:500], key=req.key)
                continue
            try:
                scores, reasoning = req.parser(text)
            except ParseFailure as exc:
                verdict = Verdict(ok=False, error=exc.kind, detail=exc.detail, raw=text, key=req.key)
                continue
            verdict = Verdict(ok=True, scores=scores, reasoning=reasoning, raw=text, key=req.key)
            break
        assert verdict is not None
        verdict.attempts = attempts
        verdict.latency_s = time.perf_counter() - t0
        self.stats.record(verdict, retries=retries, reasks=reasks)
        if not verdict.ok:
            log.debug("judge answer excluded (%s): %s", verdict.error, verdict.detail)
        return verdict

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Verdict]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.judge, requests))

    # VIEScore conveniences (GEdit-Bench and the RL judge reward)
    def edit_sc_request(self, source: ImageLike, edited: ImageLike, instruction: str, key: str | None = None
                        ) -> JudgeRequest:
        return JudgeRequest(viescore.edit_sc_prompt(instruction), [source, edited], viescore_parser("edit_sc"),
                            key=key, meta={"kind": "edit_sc"})

    def t2i_sc_request(self, image: ImageLike, prompt: str, key: str | None = None) -> JudgeRequest:
        return JudgeRequest(viescore.t2i_sc_prompt(prompt), [image], viescore_parser("t2i_sc"), key=key,
                            meta={"kind": "t2i_sc"})

    def pq_request(self, image: ImageLike, key: str | None = None) -> JudgeRequest:
        return JudgeRequest(viescore.pq_prompt(), [image], viescore_parser("pq"), key=key, meta={"kind": "pq"})

    def viescore_edit(
        self, sources: Sequence[ImageLike], edited: Sequence[ImageLike], instructions: Sequence[str],
    ) -> list[tuple[viescore.VIEScoreResult, Verdict, Verdict]]:
        """SC and PQ for each edit, all requests in one concurrent batch."""
        n = len(edited)
        reqs = [self.edit_sc_request(s, e, i) for s, e, i in zip(sources, edited, instructions, strict=True)]
        reqs += [self.pq_request(e) for e in edited]
        verdicts = self.judge_many(reqs)
        out = []
        for sc_v, pq_v in zip(verdicts[:n], verdicts[n:], strict=True):
            res = viescore.combine(sc_v.scores if sc_v.ok else None, pq_v.scores if pq_v.ok else None)
            out.append((res, sc_v, pq_v))
        return out


def _message_text(body: dict[str, Any]) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None
