"""DPG-Bench, GEdit-Bench and ImgEdit: loaders on fixture files in their own formats, format errors that name
the field, and each benchmark's scoring / aggregation formula."""

import math
from pathlib import Path

import pytest
from PIL import Image

from unipic.evaluation import dpg, gedit, imgedit
from unipic.evaluation.errors import BenchmarkFormatError

DATA = Path(__file__).resolve().parents[2] / "data" / "benchmarks"


# --- DPG-Bench ------------------------------------------------------------------------------------------------
def test_dpg_loader_and_reference_quirk():
    faithful = dpg.load_items(DATA / "dpg", reference_quirks=True)
    fixed = dpg.load_items(DATA / "dpg", reference_quirks=False)
    assert [i.item_id for i in fixed] == ["shapes_0001", "shapes_0002", "shapes_0003"]
    assert len(fixed[0].questions) == 4 and len(faithful[0].questions) == 3  # first data row dropped
    q = fixed[0].questions[3]
    assert q.dependency == [1, 2] and q.category_l2 == "relation - spatial" and q.category_l1 == "relation"


class TableVQA:
    def __init__(self, yes):
        self.yes = yes

    def answer(self, image, question):
        return "yes" if question in self.yes else "no"


def test_dpg_parent_zeroing_and_scale():
    item = dpg.load_items(DATA / "dpg", reference_quirks=False)[0]
    grid = dpg.tile([Image.new("RGB", (8, 8))] * 4)
    all_yes = TableVQA({q.question for q in item.questions})
    assert dpg.score_item(item, grid, all_yes)["score"] == 1.0
    # "Is there a red circle?" fails -> its children ("Is the circle red?", the relation) are zeroed too,
    # even though the VQA said yes to them.
    no_root = TableVQA({q.question for q in item.questions if q.proposition_id != 1})
    r = dpg.score_item(item, grid, no_root)
    assert r["score"] == pytest.approx(1 / 4)
    assert r["question_scores_last_crop"] == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}  # categories: before zeroing
    agg = dpg.aggregate([item], [r])
    assert agg["overall"] == pytest.approx(25.0) and agg["l1"]["entity"] == pytest.approx(50.0)


def test_dpg_answers_must_be_exactly_yes():
    item = dpg.load_items(DATA / "dpg", reference_quirks=False)[1]

    class Polite:
        def answer(self, image, question):
            return "Yes."

    assert dpg.score_item(item, dpg.tile([Image.new("RGB", (8, 8))] * 4), Polite())["score"] == 0.0


def test_dpg_bad_csv_names_the_field(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "a.txt").write_text("x")
    (tmp_path / "dpg_bench.csv").write_text(
        "item_id,text,keywords,proposition_id,dependency,category_broad,category_detailed,tuple,"
        "question_natural_language\nz,x,,1,0,e,e,e (x),q?\na,x,,1,root,e,e,e (x),q?\n")
    with pytest.raises(BenchmarkFormatError, match="field 'dependency'"):
        dpg.load_items(tmp_path)
    (tmp_path / "dpg_bench.csv").write_text("item_id,text\na,x\n")
    with pytest.raises(BenchmarkFormatError, match="missing column"):
        dpg.load_items(tmp_path)


def test_dpg_tile_needs_four_images():
    with pytest.raises(Exception, match="4 images"):
        dpg.tile([Image.new("RGB", (8, 8))] * 3)


# --- GEdit-Bench ----------------------------------------------------------------------------------------------
def test_gedit_loads_hf_parquet_and_filters_language():
    en = gedit.load_items(DATA / "gedit" / "gedit_bench.parquet", "en")
    cn = gedit.load_items(DATA / "gedit" / "gedit_bench.parquet", "cn")
    assert len(en) == len(cn) == 6 and all(i.language == "en" for i in en)
    assert en[0].task_type == "color_alter" and en[0].source.size == (64, 64) and en[0].intersection


def test_gedit_wrong_format_names_the_field(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text('{"task_type": "color_alter", "key": "1", "instruction": "x", "instruction_language": "en"}\n')
    with pytest.raises(BenchmarkFormatError, match="field 'input_image'"):
        gedit.load_items(p)
    p.write_text('{"task_type": "recolour", "key": "1", "instruction": "x", "instruction_language": "en", '
                 '"input_image": "a.png"}\n')
    with pytest.raises(BenchmarkFormatError, match="field 'task_type'"):
        gedit.load_items(p)


def test_gedit_aggregation_is_mean_over_groups_and_excludes_failed_answers():
    rows = [
        {"group": "color_alter", "sc": 8.0, "pq": 2.0, "o": 4.0, "intersection": True},
        {"group": "color_alter", "sc": 10.0, "pq": 10.0, "o": 10.0, "intersection": False},
        {"group": "subject-add", "sc": 1.0, "pq": 9.0, "o": 3.0, "intersection": False},
        {"group": "subject-add", "sc": None, "pq": 9.0, "o": None, "intersection": False},
    ]
    a = gedit.aggregate(rows)
    assert a["groups"]["color_alter"]["o"] == 7.0 and a["groups"]["subject-add"]["excluded"] == 1
    assert a["overall"] == pytest.approx((7.0 + 3.0) / 2) and a["sc"] == pytest.approx((9.0 + 1.0) / 2)
    assert a["excluded"] == 1 and a["intersection"]["overall"] == 4.0
    assert math.isclose(math.sqrt(8 * 2), 4.0)


# --- ImgEdit --------------------------------------------------------------------------------------------------
def test_imgedit_loader_and_rubrics():
    items = imgedit.load_items(DATA / "imgedit")
    rubrics = imgedit.load_rubrics(DATA / "imgedit" / "prompts.json")
    assert {i.edit_type for i in items} <= set(rubrics)
    assert imgedit.rubric_dimensions(rubrics["adjust"]) == ["Prompt Compliance", "Visual Seamlessness",
                                                           "Physical & Detail Fidelity"]
    assert "<edit_prompt>" not in imgedit.rubric_prompt(rubrics["add"], "add a cat")


def test_imgedit_wrong_format_names_the_field(tmp_path):
    (tmp_path / "basic_edit.json").write_text('{"1": {"id": "a.png", "prompt": "x"}}')
    with pytest.raises(BenchmarkFormatError, match="field 'edit_type'"):
        imgedit.load_items(tmp_path)
    (tmp_path / "basic_edit.json").write_text('{"1": {"id": "missing.png", "prompt": "x", "edit_type": "add"}}')
    with pytest.raises(BenchmarkFormatError, match="field 'id'"):
        imgedit.load_items(tmp_path)


def test_imgedit_aggregation_rounds_like_the_reference():
    rows = [{"edit_type": "add", "scores": [5, 4, 4]}, {"edit_type": "add", "scores": [3, 3, 2]},
            {"edit_type": "remove", "scores": [1, 1, 1]}, {"edit_type": "remove", "scores": None}]
    a = imgedit.aggregate(rows)
    # per image: 4.33, 2.67 -> type mean 3.5; remove 1.0; overall = mean of types
    assert a["types"] == {"add": 3.5, "remove": 1.0} and a["overall"] == pytest.approx(2.25)
    assert a["excluded"] == 1 and a["excluded_by_type"] == {"remove": 1}


def test_gedit_jsonl_with_image_paths(tmp_path):
    src = next(iter(gedit.load_items(DATA / "gedit" / "gedit_bench.parquet"))).source
    src.save(tmp_path / "a.png")
    (tmp_path / "g.jsonl").write_text(
        '{"task_type": "subject-add", "key": "7", "instruction": "add a green triangle", '
        '"instruction_language": "en", "Intersection_exist": true, "input_image": "a.png"}\n')
    [item] = gedit.load_items(tmp_path / "g.jsonl")
    assert item.key == "7" and item.intersection and item.source.size == src.size
