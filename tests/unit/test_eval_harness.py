"""The harness end to end on ShapesWorld with fake pipelines that render ground truth: a perfect generator
scores 1.0 / 10, a wrong one scores low; generation is resumable; bad judges are excluded and reported."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from unipic.config import load_config
from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene
from unipic.evaluation import evaluate
from unipic.evaluation.benchmarks import make_benchmark
from unipic.evaluation.errors import EvaluationError
from unipic.evaluation.generation import image_path, seed_for


def _key(prompt, image):
    return prompt, None if image is None else hashlib.md5(np.asarray(image).tobytes()).hexdigest()


class OraclePipeline:
    """Stands in for UniPicKontextPipeline: same call signature, renders the ground truth (or a wrong image)."""

    def __init__(self, table, mode="perfect"):
        self.table, self.mode, self.calls, self.images = table, mode, 0, 0

    def __call__(self, prompt, image=None, generator=None, num_images_per_prompt=1, output_type="pil", **kw):
        assert isinstance(generator, list) and len(generator) == len(prompt) * num_images_per_prompt
        self.calls += 1
        out = []
        for i, p in enumerate(prompt):
            src = None if image is None else image[i]
            scene = self.table[_key(p, src)]
            if self.mode == "wrong":
                if src is not None:
                    out.append(src.copy())
                    continue
                objs = [o.model_copy(update={"color": "orange" if o.color != "orange" else "red"})
                        for o in scene.objects]
                scene = scene.model_copy(update={"objects": objs})
            out.append(Image.fromarray(render(scene)))
        self.images += len(out)

        class Out:
            images = out
        return Out()


def _cfg(**over):
    sets = ["evaluation.n_per_task=1", "evaluation.image_size=64", "evaluation.generation.images_per_prompt=2",
            "evaluation.generation.batch_size=4"] + [f"{k}={v}" for k, v in over.items()]
    return load_config("ci", sets)


def _oracle_table(cfg):
    table = {}
    for name in ("shapes_geneval", "shapes_gedit"):
        for it in make_benchmark(name, cfg.evaluation, cfg.shapes).items():
            scene = it.meta["scene"] if it.source is None else it.meta["target"]
            table[_key(it.prompt, it.source)] = Scene.model_validate(scene)
    return table


@pytest.fixture(scope="module")
def cfg():
    return _cfg()


@pytest.fixture(scope="module")
def table(cfg):
    return _oracle_table(cfg)


def test_twins_use_the_heldout_split_and_cover_every_task(cfg):
    gen = make_benchmark("shapes_geneval", cfg.evaluation, cfg.shapes).items()
    edit = make_benchmark("shapes_gedit", cfg.evaluation, cfg.shapes).items()
    assert {i.group for i in gen} == set(cfg.shapes.t2i_tasks)
    assert {i.group for i in edit} == set(cfg.shapes.edit_categories)
    assert all(i.meta["split"] == "heldout" for i in gen + edit)


def test_perfect_generator_scores_one_and_wrong_generator_scores_low(cfg, table, tmp_path):
    good = evaluate(cfg.evaluation, cfg.shapes, tmp_path / "good", pipeline=OraclePipeline(table))
    bad = evaluate(cfg.evaluation, cfg.shapes, tmp_path / "bad", pipeline=OraclePipeline(table, "wrong"))
    g, b = good["benchmarks"], bad["benchmarks"]
    assert g["shapes_geneval"]["headline"] == 1.0 and g["shapes_geneval"]["metrics"]["strict"] == 1.0
    assert g["shapes_gedit"]["headline"] == 10.0 and g["shapes_gedit"]["metrics"]["exact_success"] == 1.0
    # Wrong colours pass only the colour-free task (single_object): 1 of 6 tasks.
    assert b["shapes_geneval"]["headline"] == pytest.approx(1 / 6)
    assert b["shapes_gedit"]["headline"] < 3.0 and b["shapes_gedit"]["metrics"]["exact_success"] == 0.0
    assert g["shapes_gedit"]["judge_stats"]["excluded"] == 0


def test_outputs_report_and_metrics(cfg, table, tmp_path):
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=OraclePipeline(table))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["benchmarks"].keys() == res["benchmarks"].keys()
    metrics = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"metric": "shapes_geneval.headline", "value": 1.0} in metrics
    html = (tmp_path / "report.html").read_text()
    some_prompt = make_benchmark("shapes_geneval", cfg.evaluation, cfg.shapes).items()[0].prompt
    assert some_prompt in html and "correct" in html and "SC 10" in html
    assert "paper: UniPic2-SD3.5M-Kontext" in html and "0.89" in html  # the paper's GenEval, stored with source
    rows = (tmp_path / "shapes_gedit" / "rows.jsonl").read_text().splitlines()
    assert len(rows) == len(make_benchmark("shapes_gedit", cfg.evaluation, cfg.shapes).items())


def test_generation_is_resumable_and_repairs_missing_or_broken_images(cfg, table, tmp_path):
    one = _cfg(**{"evaluation.benchmarks": "[shapes_geneval]"})
    pipe = OraclePipeline(table)
    r1 = evaluate(one.evaluation, one.shapes, tmp_path, pipeline=pipe)
    n = r1["benchmarks"]["shapes_geneval"]["generation"]["generated"]
    assert n == 12 and pipe.images == 12
    pipe2 = OraclePipeline(table)
    r2 = evaluate(one.evaluation, one.shapes, tmp_path, pipeline=pipe2)
    assert pipe2.images == 0 and r2["benchmarks"]["shapes_geneval"]["generation"]["reused"] == 12
    first = make_benchmark("shapes_geneval", one.evaluation, one.shapes).items()[0]
    image_path(tmp_path / "shapes_geneval", first.item_id, 0).unlink()
    image_path(tmp_path / "shapes_geneval", first.item_id, 1).write_bytes(b"not a png")
    pipe3 = OraclePipeline(table)
    r3 = evaluate(one.evaluation, one.shapes, tmp_path, pipeline=pipe3)
    gen = r3["benchmarks"]["shapes_geneval"]["generation"]
    assert pipe3.images == 2 and gen["regenerated_unreadable"] == 1 and gen["reused"] == 10
    assert r3["benchmarks"]["shapes_geneval"]["headline"] == 1.0


def test_seeds_do_not_depend_on_batching():
    assert seed_for(42, "t2i-00001", 3) == seed_for(42, "t2i-00001", 3)
    assert len({seed_for(42, f"t2i-{i:05d}", k) for i in range(50) for k in range(4)}) == 200


def test_garbage_judge_is_counted_excluded_and_reported(cfg, table, tmp_path, monkeypatch):
    from unipic.judges import local_server

    real = local_server.LocalJudgeServer

    class GarbageServer(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, faults=local_server.Faults(garbage_rate=1.0), **kw)

    monkeypatch.setattr(local_server, "LocalJudgeServer", GarbageServer)
    one = _cfg(**{"evaluation.benchmarks": "[shapes_gedit]", "evaluation.judge.reask_unparseable": 0,
                  "evaluation.judge.backoff_s": 0.01})
    res = evaluate(one.evaluation, one.shapes, tmp_path, pipeline=OraclePipeline(table))
    b = res["benchmarks"]["shapes_gedit"]
    n = b["items"]
    assert b["judge_stats"]["excluded"] == 2 * n and b["judge_stats"]["failures"]["unparseable"] == 2 * n
    assert b["metrics"]["excluded"] == n and b["metrics"]["groups"] == {}
    assert b["headline"] is None or not np.isfinite(b["headline"])  # nothing scored: no number, not a zero
    assert "excluded" in (tmp_path / "report.html").read_text()


def test_unknown_benchmark_and_missing_model_are_clear_errors(cfg, tmp_path):
    with pytest.raises(EvaluationError, match="unknown benchmark 'geneva'"):
        evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=object(), benchmarks=["geneva"])
    with pytest.raises(EvaluationError, match="not a folder"):
        evaluate(cfg.evaluation, cfg.shapes, tmp_path, model=str(tmp_path / "nope"), benchmarks=["shapes_geneval"])


def test_split_all_reports_train_and_heldout_separately(table, tmp_path):
    cfg = _cfg(**{"evaluation.split": "all", "evaluation.generation.images_per_prompt": 1})
    from unipic.evaluation.oracle import ShapesOraclePipeline

    items = make_benchmark("shapes_geneval", cfg.evaluation, cfg.shapes).items()
    assert {i.meta["split"] for i in items} == {"train", "heldout"} and len(items) == 12
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=ShapesOraclePipeline(cfg.evaluation, cfg.shapes))
    for name in ("shapes_geneval", "shapes_gedit"):
        by = res["benchmarks"][name]["metrics"]["by_split"]
        assert set(by) == {"train", "heldout"}
    assert res["benchmarks"]["shapes_geneval"]["metrics"]["by_split"]["heldout"]["overall"] == 1.0


def test_arrangement_credits_the_layout_and_its_control_swaps_the_prompts(tmp_path):
    """A perfect drawer has every arrangement right; read against another prompt of the task, only what that prompt
    shares with its own (an uncoloured single object, a coincident colour) still counts."""
    from unipic.evaluation.benchmarks import arrangement_with_control
    from unipic.evaluation.gate import flat_metrics
    from unipic.evaluation.oracle import ShapesOraclePipeline

    cfg = _cfg(**{"evaluation.benchmarks": "[shapes_geneval]", "evaluation.n_per_task": 6,
                  "evaluation.generation.images_per_prompt": 1})
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=ShapesOraclePipeline(cfg.evaluation, cfg.shapes))
    m = res["benchmarks"]["shapes_geneval"]["metrics"]
    assert set(m["arrangement_tasks"]) == set(cfg.shapes.t2i_tasks)
    assert all(v == 1.0 for v in m["arrangement_tasks"].values())
    assert m["arrangement_control_tasks"]["single_object"] == 1.0  # "a circle" vs "a square": one object either way
    assert m["arrangement_control_tasks"]["colors"] < 1.0 and m["arrangement_control_tasks"]["two_object"] < 1.0
    assert flat_metrics(res)["shapes_geneval.arrangement_control_tasks.colors"] == m["arrangement_control_tasks"]["colors"]

    spec = lambda c: {"task": "colors", "caption": f"a {c} circle", "objects": [{"shape": "circle", "color": c}]}  # noqa: E731
    seen = lambda c: [{"shape": "square", "color": c, "bbox": [0, 0, 5, 5]}]  # noqa: E731
    rows = [{"tag": "colors", "prompt": f"a {c} circle", "arrangement": True, "spec": spec(c), "detected": seen(c)}
            for c in ("red", "red", "blue")]
    real, control = arrangement_with_control(rows)
    assert real == {"colors": 1.0} and control == {"colors": 0.0}  # each red image meets blue, the blue one red


def test_missing_images_at_judge_time_are_reported_and_block_the_gate(cfg, table, tmp_path):
    from unipic.config.evaluation import GateConfig
    from unipic.evaluation.benchmarks import JudgeContext
    from unipic.evaluation.gate import decide

    one = _cfg(**{"evaluation.benchmarks": "[shapes_geneval]"})
    res = evaluate(one.evaluation, one.shapes, tmp_path, pipeline=OraclePipeline(table))
    bench = make_benchmark("shapes_geneval", one.evaluation, one.shapes)
    items = bench.items()
    image_path(tmp_path / "shapes_geneval", items[0].item_id, 1).unlink()
    metrics = bench.aggregate(bench.judge(items, tmp_path / "shapes_geneval", JudgeContext()))
    assert metrics["missing_images"] == [f"{items[0].item_id}/01.png"] and metrics["images"] == 11
    res["benchmarks"]["shapes_geneval"]["metrics"] = metrics
    d = decide(res, GateConfig())
    assert not d.promote and any("1 missing image" in r for r in d.reasons)


def test_official_layouts_are_readable_by_the_authors_readers(table, tmp_path):
    from unipic.evaluation import geneval as ge

    cfg = _cfg(**{"evaluation.export_official_layout": "true"})
    evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=OraclePipeline(table))
    layout = ge.read_layout(tmp_path / "shapes_geneval" / "official")
    items = make_benchmark("shapes_geneval", cfg.evaluation, cfg.shapes).items()
    assert len(layout) == len(items) and all(len(files) == 2 for _, files in layout)
    assert layout[0][0] == items[0].meta["geneval"]
    gedit_files = list((tmp_path / "shapes_gedit" / "official" / "fullset").rglob("*.png"))
    assert len(gedit_files) == 2 * len(make_benchmark("shapes_gedit", cfg.evaluation, cfg.shapes).items())


def test_image_guidance_reaches_edit_calls_only(table, tmp_path):
    class Recording(OraclePipeline):
        def __init__(self, *a):
            super().__init__(*a)
            self.kwargs = []
            self.cfg_scales = set()

        def __call__(self, prompt, image=None, **kw):
            self.kwargs.append((image is not None, kw.get("image_guidance_scale")))
            self.cfg_scales.add((image is not None, kw["guidance_scale"]))
            return super().__call__(prompt, image=image, **kw)

    off = Recording(table)
    evaluate(_cfg().evaluation, _cfg().shapes, tmp_path / "off", pipeline=off)
    assert {g for _, g in off.kwargs} == {None}
    on = Recording(table)
    c = _cfg(**{"evaluation.generation.image_guidance_scale": 1.5})
    r = evaluate(c.evaluation, c.shapes, tmp_path / "on", pipeline=on)
    assert {(edit, g) for edit, g in on.kwargs} == {(False, None), (True, 1.5)}
    assert r["benchmarks"]["shapes_gedit"]["headline"] > 0
    assert off.cfg_scales == {(False, 4.0), (True, 4.0)}


def test_edit_guidance_scale_reaches_edit_calls_only(table, tmp_path):
    class Recording(OraclePipeline):
        scales: set = set()

        def __call__(self, prompt, image=None, **kw):
            Recording.scales.add((image is not None, kw["guidance_scale"]))
            return super().__call__(prompt, image=image, **kw)

    c = _cfg(**{"evaluation.generation.guidance_scale": 8.0, "evaluation.generation.edit_guidance_scale": 4.0})
    evaluate(c.evaluation, c.shapes, tmp_path / "split", pipeline=Recording(table))
    assert Recording.scales == {(False, 8.0), (True, 4.0)}
