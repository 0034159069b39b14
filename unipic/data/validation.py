"""The Great Expectations gate on a curated index: schema, nulls, uniqueness, signal ranges, task balance,
minimum row count.

The suite's fixed part lives in data/expectations/*.yaml; the run-dependent part (row count, task balance,
required tasks) comes from `GateConfig`. The gate writes the GX result JSON and an HTML summary that reads
offline (GX Data Docs pull JS/CSS from CDNs), and raises `GateFailed` with a readable list of failures.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import BaseModel

from unipic.config.curation import GateConfig
from unipic.errors import ConfigError, DataError
from unipic.logging import get_logger

log = get_logger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


class GateFailed(DataError):
    """The curated index failed its expectation suite; nothing downstream may consume it."""

    def __init__(self, message: str, result: GateResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class ExpectationOutcome(BaseModel):
    expectation: str
    column: str | None
    success: bool
    detail: str


class GateResult(BaseModel):
    success: bool
    suite: str
    outcomes: list[ExpectationOutcome]
    result_json: Path | None = None
    summary_html: Path | None = None

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        bad = self.failures()
        head = f"suite '{self.suite}': {len(self.outcomes) - len(bad)}/{len(self.outcomes)} expectations met"
        return "\n".join([head, *(f"  FAILED {o.expectation}({o.column or ''}): {o.detail}" for o in bad)])


def load_suite_spec(path: Path) -> dict[str, Any]:
    p = path if path.is_absolute() or path.exists() else REPO_ROOT / path
    if not p.is_file():
        raise ConfigError(f"expectation suite {path} not found; set curation.gate.suite to a suite YAML "
                          f"(the default is data/expectations/curated_index.yaml)")
    spec = yaml.safe_load(p.read_text()) or {}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"{p}: a suite YAML needs at least 'name' and expectation lists")
    return spec


def _expectations(spec: dict[str, Any], gate: GateConfig) -> list[Any]:
    import great_expectations.expectations as gxe

    ex: list[Any] = []
    cols = spec.get("columns") or {}
    if cols:
        ex.append(gxe.ExpectTableColumnsToMatchSet(column_set=list(cols), exact_match=True))
        for col, dtype in cols.items():
            ex.append(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=[dtype]))
    ex += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in spec.get("not_null", [])]
    ex += [gxe.ExpectColumnValuesToNotBeNull(column=c, row_condition=q, condition_parser="pandas")
           for c, q in (spec.get("not_null_where") or {}).items()]
    ex += [gxe.ExpectColumnValuesToBeUnique(column=c) for c in spec.get("unique", [])]
    ex += [gxe.ExpectColumnValuesToBeUnique(column=c, row_condition=q, condition_parser="pandas")
           for c, q in (spec.get("unique_where") or {}).items()]
    ex += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v)
           for c, v in (spec.get("in_set") or {}).items()]
    ex += [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
           for c, (lo, hi) in (spec.get("ranges") or {}).items()]
    ex.append(gxe.ExpectTableRowCountToBeBetween(min_value=gate.min_rows))
    if gate.required_tasks:
        ex.append(gxe.ExpectColumnDistinctValuesToContainSet(column="task", value_set=gate.required_tasks))
    return ex


def task_balance(index: pd.DataFrame) -> pd.DataFrame:
    """One row per (kind, task): its count and its share of its kind (edits and T2I balance separately)."""
    if index.empty:
        return pd.DataFrame({"kind": pd.Series(dtype=object), "task": pd.Series(dtype=object),
                             "count": pd.Series(dtype="int64"), "fraction": pd.Series(dtype="float64")})
    counts = index.groupby(["kind", "task"]).size().rename("count").reset_index()
    counts["fraction"] = counts["count"] / counts.groupby("kind")["count"].transform("sum")
    return counts


def _outcome(r: dict[str, Any]) -> ExpectationOutcome:
    cfg = r["expectation_config"]
    kw = {k: v for k, v in cfg["kwargs"].items() if k not in ("batch_id", "condition_parser")}
    res = r.get("result") or {}
    col = kw.pop("column", None)
    if r.get("exception_info", {}).get("raised_exception"):
        detail = f"error: {r['exception_info'].get('exception_message')}"
    elif res.get("unexpected_count") is not None:
        examples = (res.get("partial_unexpected_list") or [])[:5]
        detail = (f"{res['unexpected_count']} unexpected (e.g. {examples}); "
                  f"expected {kw}")
    else:
        detail = f"observed {res.get('observed_value')!r}; expected {kw}"
    return ExpectationOutcome(expectation=cfg["type"], column=col, success=bool(r["success"]), detail=detail)


def validate_index(index: pd.DataFrame, gate: GateConfig, out_dir: str | Path | None = None) -> GateResult:
    """Run the suite (and the task-balance suite) on `index`; write JSON + HTML into out_dir if given."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = load_suite_spec(gate.suite)
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    ds = ctx.data_sources.add_pandas("curation")
    results: list[dict[str, Any]] = []
    checks = [(spec["name"], index, _expectations(spec, gate))]
    balance = task_balance(index)
    checks.append((f"{spec['name']}_task_balance", balance, [
        gxe.ExpectColumnValuesToBeBetween(column="fraction", min_value=gate.min_task_fraction,
                                          max_value=gate.max_task_fraction),
    ]))
    success = True
    for name, frame, expectations in checks:
        bd = ds.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for e in expectations:
            suite.add_expectation(e)
        vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=bd, suite=suite))
        res = vd.run(batch_parameters={"dataframe": frame}).to_json_dict()
        success = success and bool(res["success"])
        results.append(res)
    outcomes = [_outcome(r) for res in results for r in res["results"]]
    result = GateResult(success=success, suite=spec["name"], outcomes=outcomes)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.result_json = out / "validation_result.json"
        blob = json.dumps({"success": success, "suites": results}, indent=1, default=str)
        result.result_json.write_text(blob)
        result.summary_html = out / "validation_summary.html"
        result.summary_html.write_text(render_html(result, balance))
    log.info(result.summary().splitlines()[0])
    return result


def render_html(result: GateResult, balance: pd.DataFrame) -> str:
    """A self-contained page (inline CSS, no scripts) that opens from the KFP UI or a laptop offline."""
    rows = "".join(
        f"<tr class={'ok' if o.success else 'bad'}><td>{'✔' if o.success else '✘'}</td>"
        f"<td>{html.escape(o.expectation)}</td><td>{html.escape(o.column or '')}</td>"
        f"<td>{html.escape(o.detail)}</td></tr>"
        for o in sorted(result.outcomes, key=lambda o: o.success)
    )
    verdict = "PASSED" if result.success else "FAILED"
    return (
        "<!doctype html><meta charset=utf-8><title>Data validation</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 8px;font-size:13px;text-align:left}.ok td:first-child{color:#080}.bad{background:#fee}"
        ".bad td:first-child{color:#c00}</style>"
        f"<h1>Suite {html.escape(result.suite)}: {verdict}</h1>"
        f"<p>{sum(o.success for o in result.outcomes)}/{len(result.outcomes)} expectations met.</p>"
        "<h2>Task balance</h2>" + balance.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        + "<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>column</th><th>detail</th></tr>"
        + rows + "</table>"
    )


def gate_index(index: pd.DataFrame, gate: GateConfig, out_dir: str | Path) -> GateResult:
    """Validate and raise `GateFailed` (with the readable summary and the report paths) on failure."""
    result = validate_index(index, gate, out_dir)
    if not result.success:
        raise GateFailed(
            f"the curated dataset failed its expectation suite; nothing was published or versioned.\n"
            f"{result.summary()}\nreport: {result.summary_html}\nfix the source data or the thresholds in "
            f"curation.gate / {gate.suite}",
            result,
        )
    return result
