"""The promotion gate: compare a candidate's evaluation with thresholds and with the deployed model's.

Promote only when every check passes. A check that cannot be made (a metric the thresholds name is missing
from the results) is a failure, not a pass: an incomplete evaluation must not promote a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unipic.evaluation.errors import EvaluationError


@dataclass
class GateDecision:
    decision: str  # "promote" | "reject"
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """`benchmark.metric` -> value for every finite scalar (headline, tasks/groups/types, judge failure rate)."""
    out: dict[str, float] = {}
    for name, b in results.get("benchmarks", {}).items():
        if isinstance(b.get("headline"), (int, float)):
            out[f"{name}.headline"] = float(b["headline"])
        for k, v in b.get("metrics", {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{name}.{k}"] = float(v)
            elif isinstance(v, dict) and k in ("tasks", "groups", "types", "l1", "strict_tasks", "exact", "by_split",
                                                 "arrangement_tasks", "arrangement_control_tasks"):
                for kk, vv in v.items():
                    val = (vv.get("o", vv.get("overall")) if isinstance(vv, dict) else vv)
                    if isinstance(val, (int, float)):
                        out[f"{name}.{k}.{kk}"] = float(val)
        js = b.get("judge_stats") or {}
        if js.get("requests"):
            out[f"{name}.judge_failure_rate"] = float(js["failure_rate"])
    return {k: v for k, v in out.items() if math.isfinite(v)}


def load_results(path_or_dict: str | Path | dict[str, Any] | None, store_cfg: Any = None) -> dict[str, Any] | None:
    """results.json from a dict, a file, its folder, or s3:// (the file, or a published evaluation prefix)."""
    if path_or_dict is None or isinstance(path_or_dict, dict):
        return path_or_dict
    if str(path_or_dict).startswith("s3://"):
        from unipic.storage import ObjectStore

        uri = str(path_or_dict)
        key = uri if uri.endswith(".json") else uri.rstrip("/") + "/results.json"
        if store_cfg is None:
            raise EvaluationError(f"{uri} is an s3:// URI but no store config was given")
        return ObjectStore(store_cfg).read_json(key)
    p = Path(path_or_dict)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise EvaluationError(f"no evaluation results at {p}; run `unipic eval` first or pass results.json")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{p}: not valid JSON ({exc.msg})") from None


def decide(candidate: dict[str, Any], cfg: Any, deployed: dict[str, Any] | None = None) -> GateDecision:
    """`cfg` is `unipic.config.evaluation.GateConfig`."""
    cand = flat_metrics(candidate)
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    for key, minimum in sorted(cfg.thresholds.items()):
        if key not in cand:
            check(f"threshold {key}", False, f"{key} is missing from the candidate's results")
        else:
            check(f"threshold {key}", cand[key] >= minimum, f"{key} = {cand[key]:.4g} (minimum {minimum:.4g})")
    for name, b in candidate.get("benchmarks", {}).items():
        js = b.get("judge_stats") or {}
        if js.get("requests"):
            rate = js["failure_rate"]
            check(f"judge {name}", rate <= cfg.max_judge_failure_rate,
                  f"{js['excluded']} of {js['requests']} judge answers excluded ({rate:.1%}, allowed "
                  f"{cfg.max_judge_failure_rate:.1%})")
        missing = b.get("metrics", {}).get("missing_images") or []
        check(f"complete {name}", not missing, f"{len(missing)} missing image(s)" if missing else "all images present")
    if deployed is None:
        check("deployed baseline", not cfg.require_deployed,
              "no deployed model results given" + (" (required)" if cfg.require_deployed else "; skipped"))
    else:
        base = flat_metrics(deployed)
        shared = [n for n in candidate.get("benchmarks", {}) if n in deployed.get("benchmarks", {})]
        if not shared:
            check("deployed baseline", False, "the candidate and the deployed model share no benchmark")
        for name in shared:
            key = f"{name}.headline"
            c, d = cand.get(key), base.get(key)
            if c is None or d is None:
                check(f"regression {name}", False, f"{key} is not a number for both models")
                continue
            floor = d - cfg.max_regression * abs(d)
            j1 = candidate["benchmarks"][name].get("judge", {}).get("model")
            j2 = deployed["benchmarks"][name].get("judge", {}).get("model")
            note = f"; judges differ ({j1} vs {j2})" if j1 != j2 else ""
            check(f"regression {name}", c >= floor,
                  f"{key}: candidate {c:.4g} vs deployed {d:.4g} (floor {floor:.4g}, "
                  f"max relative drop {cfg.max_regression:.1%}){note}")
    failed = [c for c in checks if not c["ok"]]
    reasons = [f"{c['check']}: {c['detail']}" for c in failed] or ["all checks passed"]
    return GateDecision("reject" if failed else "promote", reasons, checks)
