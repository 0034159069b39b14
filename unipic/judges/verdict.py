"""What one judge call returns, and the counters a batch keeps.

A verdict either carries scores that passed strict validation (`ok`), or says why it was excluded. There
is no fallback score: GEdit-Bench's reference code guesses `random.randint(0, 10)` when it cannot parse an
answer, which silently adds noise to the mean; we count and exclude instead, and report the counts.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAILURE_KINDS = ("unparseable", "out_of_range", "timeout", "http_5xx", "http_429", "connection", "http_4xx")


@dataclass
class Verdict:
    ok: bool
    scores: list[float] | None = None
    reasoning: str = ""
    raw: str = ""
    error: str | None = None
    detail: str = ""
    attempts: int = 0
    latency_s: float = 0.0
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeStats:
    """Thread-safe counters for a judge client. `excluded` is what a report must show next to the mean."""

    requests: int = 0
    ok: int = 0
    retries: int = 0
    reasks: int = 0
    failures: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FAILURE_KINDS})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, verdict: Verdict, retries: int = 0, reasks: int = 0) -> None:
        with self._lock:
            self.requests += 1
            self.retries += retries
            self.reasks += reasks
            if verdict.ok:
                self.ok += 1
            else:
                kind = verdict.error or "unparseable"
                self.failures[kind] = self.failures.get(kind, 0) + 1

    @property
    def excluded(self) -> int:
        return sum(self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests, "ok": self.ok, "excluded": self.excluded, "retries": self.retries,
                "reasks": self.reasks, "failures": dict(self.failures),
                "failure_rate": (self.excluded / self.requests) if self.requests else 0.0,
            }
