"""GenEval: construction rules, metadata format errors, clause logic, aggregation."""

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from unipic.evaluation import geneval as ge
from unipic.evaluation.errors import BenchmarkFormatError

DATA = Path(__file__).resolve().parents[2] / "data" / "benchmarks" / "geneval"
NAMES = (DATA / "object_names.txt").read_text().splitlines()


def test_construction_reproduces_genevals_shipped_counts():
    s = ge.build_prompts(NAMES, n=100, seed=43)
    # The shipped evaluation_metadata.jsonl has 553 prompts with these per-task counts after de-duplication.
    assert len(s) == 553
    assert Counter(x["tag"] for x in s) == {"single_object": 80, "two_object": 99, "counting": 80,
                                            "colors": 94, "position": 100, "color_attr": 100}
    assert s == ge.load_metadata(DATA / "evaluation_metadata.jsonl")


def test_construction_rules():
    s = ge.build_prompts(NAMES, n=100, seed=43)
    assert all("person" not in [c["class"] for c in x["include"] if "color" in c] for x in s)
    count = next(x for x in s if x["tag"] == "counting")
    n = count["include"][0]["count"]
    assert 2 <= n <= 4 and count["exclude"] == [{"class": count["include"][0]["class"], "count": n + 1}]
    pos = next(x for x in s if x["tag"] == "position")
    assert pos["include"][1]["position"][1] == 0 and pos["include"][1]["position"][0] in ge.POSITIONS
    assert ge.with_article("apple") == "an apple" and ge.make_plural("bus") == "buses"
    assert ge.make_plural("cat") == "cats"


@pytest.mark.parametrize("line,field", [
    ('{"prompt": "x", "include": []}', "tag"),
    ('{"tag": "colours", "prompt": "x", "include": []}', "tag"),
    ('{"tag": "colors", "prompt": "x", "include": [{"class": "cat"}]}', "include[0]"),
    ('{"tag": "position", "prompt": "x", "include": [{"class": "a", "count": 1, "position": ["near", 0]}]}',
     "include[0].position"),
])
def test_metadata_format_errors_name_the_field(tmp_path, line, field):
    p = tmp_path / "m.jsonl"
    p.write_text(line + "\n")
    with pytest.raises(BenchmarkFormatError, match=re.escape(f"field '{field}'")):
        ge.load_metadata(p)


class FakeColors:
    def classify(self, image, dets, cls):
        return [d.attrs["color"] for d in dets]


def D(x0, y0, x1, y1, color="red", score=0.99):
    return ge.Detection((x0, y0, x1, y1), score, attrs={"color": color})


IMG = np.zeros((64, 64, 3), np.uint8)


def test_counting_include_and_exclude():
    meta = {"tag": "counting", "prompt": "two cats", "include": [{"class": "cat", "count": 2}],
            "exclude": [{"class": "cat", "count": 3}]}
    assert ge.evaluate_clauses(IMG, {"cat": [D(0, 0, 5, 5), D(10, 10, 15, 15)]}, meta, FakeColors())[0]
    ok, why = ge.evaluate_clauses(IMG, {"cat": [D(0, 0, 5, 5)] * 3}, meta, FakeColors())
    assert not ok and "cat<3" in why
    assert not ge.evaluate_clauses(IMG, {"cat": [D(0, 0, 5, 5)]}, meta, FakeColors())[0]


def test_counting_uses_its_higher_threshold():
    raw = {"cat": [D(0, 0, 5, 5, score=0.95), D(9, 9, 15, 15, score=0.5)]}
    assert len(ge.filter_detections(raw, "counting")["cat"]) == 1
    assert len(ge.filter_detections(raw, "two_object")["cat"]) == 2


def test_color_is_checked_on_the_most_confident_objects():
    meta = {"tag": "colors", "prompt": "a red cat", "include": [{"class": "cat", "count": 1, "color": "red"}]}
    dets = ge.filter_detections({"cat": [D(0, 0, 5, 5, "blue", 0.5), D(9, 9, 15, 15, "red", 0.9)]}, "colors")
    assert ge.evaluate_clauses(IMG, dets, meta, FakeColors())[0]
    dets = ge.filter_detections({"cat": [D(0, 0, 5, 5, "blue", 0.95), D(9, 9, 15, 15, "red", 0.9)]}, "colors")
    assert not ge.evaluate_clauses(IMG, dets, meta, FakeColors())[0]


def test_position_against_the_target_group():
    meta = {"tag": "position", "prompt": "a cat left of a dog",
            "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1, "position": ["left of", 0]}]}
    assert ge.evaluate_clauses(IMG, {"dog": [D(40, 20, 60, 40)], "cat": [D(0, 20, 20, 40)]}, meta, FakeColors())[0]
    ok, why = ge.evaluate_clauses(IMG, {"dog": [D(0, 20, 20, 40)], "cat": [D(40, 20, 60, 40)]}, meta, FakeColors())
    assert not ok and "right of" in why
    ok, why = ge.evaluate_clauses(IMG, {"cat": [D(0, 20, 20, 40)]}, meta, FakeColors())
    assert not ok and "no target" in why
    # Overlapping centres within 0.1 x (dims) give no relation.
    assert ge.relative_position(D(10, 10, 30, 30), D(12, 10, 32, 30)) == set()


def test_summary_is_unweighted_mean_of_task_means():
    rows = [{"tag": "colors", "prompt": "a", "correct": True}] * 3 + [{"tag": "colors", "prompt": "b", "correct": False}]
    rows += [{"tag": "position", "prompt": "c", "correct": False}]
    s = ge.summarize(rows)
    assert s["tasks"] == {"colors": 0.75, "position": 0.0}
    assert s["overall"] == pytest.approx(0.375)
    assert s["correct_images"] == pytest.approx(0.6) and s["correct_prompts"] == pytest.approx(1 / 3)


def test_layout_round_trip(tmp_path):
    meta = {"tag": "colors", "prompt": "a red cat", "include": [{"class": "cat", "count": 1, "color": "red"}]}
    ge.write_layout(tmp_path, 7, meta, [IMG, IMG])
    [(m, files)] = ge.read_layout(tmp_path)
    assert m == meta and [f.name for f in files] == ["0000.png", "0001.png"]
    assert json.loads((tmp_path / "00007" / "metadata.jsonl").read_text()) == meta
