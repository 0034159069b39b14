"""A scorer model behind the KServe V2 (Open Inference Protocol) REST route.

Request: `POST {base_url}/v2/models/{name}/infer` with BYTES inputs (base64 PNG over REST, as KServe's
custom predictors decode them): `image` [N], optionally `text` [N] (prompt or instruction) and `source` [N]
(the image before the edit). Response: an FP32 output named `score` with shape [N]. Scores outside
[lo, hi] or non-finite values are excluded per item, like an unparseable VLM answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from unipic.judges.http import RetryPolicy, TransportFailure, post_json
from unipic.judges.images import ImageLike, b64_png
from unipic.judges.verdict import JudgeStats, Verdict


class KServeV2Scorer:
    def __init__(
        self, base_url: str, model_name: str, *, timeout_s: float = 30.0, max_retries: int = 3,
        backoff_s: float = 0.5, max_backoff_s: float = 8.0, batch_size: int = 16, concurrency: int = 4,
        score_range: tuple[float, float] = (0.0, 1.0), output_name: str = "score", api_key: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.policy = RetryPolicy(max_retries, backoff_s, max_backoff_s)
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.score_range = score_range
        self.output_name = output_name
        self.stats = JudgeStats()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers,
                                    limits=httpx.Limits(max_connections=concurrency))

    @classmethod
    def from_config(cls, cfg: Any) -> KServeV2Scorer:
        """Build from `unipic.config.evaluation.ScorerConfig`."""
        from unipic.judges.http import api_key_from_env

        return cls(cfg.base_url, cfg.model_name, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                   backoff_s=cfg.backoff_s, max_backoff_s=cfg.max_backoff_s, batch_size=cfg.batch_size,
                   concurrency=cfg.concurrency, api_key=api_key_from_env(cfg.api_key_env))

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}/infer"

    @property
    def identity(self) -> dict[str, str]:
        return {"protocol": "kserve-v2", "base_url": self.base_url, "model": self.model_name}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KServeV2Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, images: Sequence[ImageLike], texts: Sequence[str] | None,
                 sources: Sequence[ImageLike] | None) -> dict[str, Any]:
        n = len(images)
        inputs = [{"name": "image", "shape": [n], "datatype": "BYTES", "data": [b64_png(i) for i in images]}]
        if texts is not None:
            inputs.append({"name": "text", "shape": [n], "datatype": "BYTES", "data": list(texts)})
        if sources is not None:
            inputs.append({"name": "source", "shape": [n], "datatype": "BYTES",
                           "data": [b64_png(s) for s in sources]})
        return {"inputs": inputs, "outputs": [{"name": self.output_name}]}

    def _score_chunk(self, chunk: tuple[Sequence[ImageLike], Sequence[str] | None, Sequence[ImageLike] | None]
                     ) -> list[Verdict]:
        images, texts, sources = chunk
        t0 = time.perf_counter()
        try:
            body, attempts = post_json(self._client, self.url, self._request(images, texts, sources), self.policy)
        except TransportFailure as exc:
            out = [Verdict(ok=False, error=exc.kind, detail=exc.detail, attempts=exc.attempts) for _ in images]
            for v in out:
                self.stats.record(v, retries=exc.attempts - 1)
            return out
        latency = time.perf_counter() - t0
        values = _output(body, self.output_name)
        out = []
        for i in range(len(images)):
            if values is None or len(values) != len(images):
                v = Verdict(ok=False, error="unparseable", raw=str(body)[:300],
                            detail=f"response has no '{self.output_name}' output with {len(images)} values")
            else:
                x = values[i]
                lo, hi = self.score_range
                if isinstance(x, bool) or not isinstance(x, (int, float)):
                    v = Verdict(ok=False, error="unparseable", detail=f"score {x!r} is not a number")
                elif not math.isfinite(x) or not lo <= x <= hi:
                    v = Verdict(ok=False, error="out_of_range", detail=f"score {x} outside [{lo}, {hi}]")
                else:
                    v = Verdict(ok=True, scores=[float(x)])
            v.attempts, v.latency_s = attempts, latency
            self.stats.record(v, retries=attempts - 1 if i == 0 else 0)
            out.append(v)
        return out

    def score(self, images: Sequence[ImageLike], texts: Sequence[str] | None = None,
              sources: Sequence[ImageLike] | None = None) -> list[Verdict]:
        """Score images in batches of `batch_size`, `concurrency` batches in flight; input order kept."""
        n = len(images)
        chunks = []
        for s in range(0, n, self.batch_size):
            e = min(n, s + self.batch_size)
            chunks.append((images[s:e], None if texts is None else texts[s:e],
                           None if sources is None else sources[s:e]))
        if not chunks:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(chunks))) as pool:
            return [v for part in pool.map(self._score_chunk, chunks) for v in part]


def _output(body: dict[str, Any], name: str) -> list[Any] | None:
    for out in body.get("outputs") or []:
        if isinstance(out, dict) and out.get("name") == name and isinstance(out.get("data"), list):
            return out["data"]
    return None
