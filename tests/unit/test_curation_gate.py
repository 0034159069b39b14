"""The Great Expectations gate: passes a clean curated index, fails (with a readable report) on each kind of
problem the suite names, and always leaves the result JSON and an offline HTML summary behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unipic.config.curation import GateConfig
from unipic.data.curation.output import index_frame
from unipic.data.validation import GateFailed, gate_index, task_balance, validate_index


def clean_index(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        edit = i % 2 == 1
        rows.append({
            "sample_id": f"s{i}", "kind": "edit" if edit else "t2i", "task": ["a", "b"][i % 4 // 2],
            "text": f"caption {i}", "shard": "shards/t2i-000000.tar", "width": 32, "height": 32,
            "sha256": f"{i:064x}", "split": "train", "content_sha256": f"{i + 1000:064x}",
            "source_sha256": f"{i + 5000:064x}" if edit else None, "phash": f"{i:048x}",
            "sharpness": float(rng.uniform(0, 500)), "colourfulness": float(rng.uniform(0, 80)),
            "exposure": float(rng.uniform(0.2, 0.9)), "clipped_fraction": float(rng.uniform(0, 1)),
            "agreement": float(rng.uniform(0, 1)), "change_ratio": float(rng.uniform(0.01, 0.5)) if edit else np.nan,
        })
    return index_frame(rows)


GATE = GateConfig(min_rows=10, min_task_fraction=0.2, max_task_fraction=0.8, required_tasks=["a", "b"])


def test_clean_index_passes_and_writes_artifacts(tmp_path: Path) -> None:
    res = gate_index(clean_index(), GATE, tmp_path)
    assert res.success and not res.failures()
    assert len(res.outcomes) > 40
    data = json.loads(res.result_json.read_text())
    assert data["success"] is True and len(data["suites"]) == 2
    page = res.summary_html.read_text()
    assert "PASSED" in page and "<script" not in page and "http" not in page


@pytest.mark.parametrize(
    ("break_it", "expectation", "column"),
    [
        (lambda d: d.assign(exposure=d["exposure"].where(d.index != 3, 1.7)), "expect_column_values_to_be_between", "exposure"),
        (lambda d: d.assign(sample_id=d["sample_id"].where(d.index != 4, "s0")), "expect_column_values_to_be_unique", "sample_id"),
        (lambda d: d.assign(sha256=d["sha256"].where(d.index != 2, d["sha256"][0])), "expect_column_values_to_be_unique", "sha256"),
        (lambda d: d.assign(text=d["text"].where(d.index != 5, None)), "expect_column_values_to_not_be_null", "text"),
        (lambda d: d.assign(change_ratio=d["change_ratio"].where(d.index != 1, np.nan)), "expect_column_values_to_not_be_null", "change_ratio"),
        (lambda d: d.drop(columns=["agreement"]), "expect_table_columns_to_match_set", None),
        (lambda d: d.head(6), "expect_table_row_count_to_be_between", None),
        (lambda d: d[d["task"] == "a"], "expect_column_distinct_values_to_contain_set", "task"),
        (lambda d: d.assign(task=["a"] * 36 + ["b"] * 4), "expect_column_values_to_be_between", "fraction"),
    ],
)
def test_each_broken_property_fails_the_gate(tmp_path: Path, break_it, expectation: str, column: str | None) -> None:
    bad = break_it(clean_index().copy())
    with pytest.raises(GateFailed) as exc:
        gate_index(bad, GATE, tmp_path)
    msg = str(exc.value)
    assert "nothing was published" in msg and expectation in msg
    failed = [(o.expectation, o.column) for o in exc.value.result.failures()]
    assert (expectation, column) in failed
    assert "FAILED" in (tmp_path / "validation_summary.html").read_text()


def test_task_balance_is_per_kind() -> None:
    bal = task_balance(clean_index())
    assert set(bal["kind"]) == {"t2i", "edit"}
    assert np.allclose(bal.groupby("kind")["fraction"].sum(), 1.0)
