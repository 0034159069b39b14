"""Scorers: ground truth scores 1.0; deliberately wrong images score low, for the reason they are wrong."""

from __future__ import annotations

import numpy as np
import pytest

from unipic.config.data import EDIT_CATEGORIES, ShapesConfig
from unipic.data.shapes import (
    Scene,
    SceneObject,
    cleanliness,
    make_edit_sample,
    make_t2i_sample,
    render,
    score_edit,
    score_t2i,
)

CFG = ShapesConfig(image_size=64)


def _samples(task: str, n: int = 8):
    cfg = CFG.model_copy(update={"t2i_tasks": [task]})
    return [make_t2i_sample(cfg, i) for i in range(n)]


def _edits(category: str, n: int = 8):
    cfg = CFG.model_copy(update={"edit_categories": [category]})
    return [make_edit_sample(cfg, i) for i in range(n)]


def _with_objects(scene: Scene, objects) -> Scene:
    return scene.model_copy(update={"objects": list(objects)})


@pytest.mark.parametrize("task", ["single_object", "two_object", "counting", "colors", "position", "color_attr"])
def test_ground_truth_scores_one(task):
    samples = _samples(task)
    scores = score_t2i([render(s.scene) for s in samples], [s.spec for s in samples])
    assert all(s.correct and s.score == 1.0 and s.cleanliness == 1.0 for s in scores)
    assert all(s.task == task and s.reason == "ok" for s in scores)


def test_wrong_colour_fails_with_half_credit():
    for s in _samples("colors"):
        obj = s.scene.objects[0]
        other = "green" if obj.color != "green" else "red"
        img = render(_with_objects(s.scene, [obj.model_copy(update={"color": other})]))
        (sc,) = score_t2i([img], [s.spec])
        assert not sc.correct and sc.score == pytest.approx(0.5)
        assert sc.components["colors_ok"] is False and sc.components["shapes_ok"] is True


def test_single_object_ignores_colour_but_not_shape():
    s = _samples("single_object")[0]
    obj = s.scene.objects[0]
    recoloured = render(_with_objects(s.scene, [obj.model_copy(update={"color": "purple" if obj.color != "purple" else "red"})]))
    other_shape = "square" if obj.shape != "square" else "circle"
    reshaped = render(_with_objects(s.scene, [obj.model_copy(update={"shape": other_shape})]))
    a, b = score_t2i([recoloured, reshaped], [s.spec, s.spec])
    assert a.correct and not b.correct and b.score == 0.0


def test_wrong_count_fails():
    for s in _samples("counting"):
        fewer = render(_with_objects(s.scene, s.scene.objects[:-1]))
        (sc,) = score_t2i([fewer], [s.spec])
        n = s.spec.objects[0].count
        assert not sc.correct and sc.components["count_ok"] is False
        assert sc.score == pytest.approx(2 * (n - 1) / (2 * n - 1))


def test_extra_object_fails_strictly():
    s = _samples("colors")[0]
    extra = SceneObject(shape="square", color="orange", size="small", bbox=(1, 1, 2, 2))
    scene = s.scene
    free = next(b for b in [(4, 4, 16, 16), (46, 46, 58, 58), (4, 46, 16, 58), (46, 4, 58, 16)]
                if all(b[2] + 2 <= o.bbox[0] or o.bbox[2] + 2 <= b[0] or b[3] + 2 <= o.bbox[1] or o.bbox[3] + 2 <= b[1]
                       for o in scene.objects))
    img = render(_with_objects(scene, [*scene.objects, extra.model_copy(update={"bbox": free})]))
    (sc,) = score_t2i([img], [s.spec])
    assert not sc.correct and sc.score < 1.0 and sc.components["n_detected"] == 2


def _mirror(obj: SceneObject, size: int, axis: str) -> SceneObject:
    x0, y0, x1, y1 = obj.bbox
    box = (size - x1, y0, size - x0, y1) if axis == "x" else (x0, size - y1, x1, size - y0)
    return obj.model_copy(update={"bbox": box})


def test_wrong_position_fails():
    samples = _samples("position")
    for s in samples:
        axis = "x" if s.spec.relation.relation in ("left of", "right of") else "y"
        mirrored = _with_objects(s.scene, [_mirror(o, 64, axis) for o in s.scene.objects])
        (sc,) = score_t2i([render(mirrored)], [s.spec])
        assert not sc.correct and sc.components["relation_ok"] is False and sc.score == 0.5
        assert sc.components["shapes_ok"] and sc.components["colors_ok"]


def _unasked(spec, field: str, pool: list[str]) -> str:
    return next(v for v in pool if v not in {getattr(r, field) for r in spec.objects})


def _reshaped(objects, spec) -> list[SceneObject]:
    """Every object drawn as a shape the prompt does not name (a model's ragged outline, read as another shape)."""
    return [o.model_copy(update={"shape": _unasked(spec, "shape", ["circle", "square", "triangle"])}) for o in objects]


@pytest.mark.parametrize("task", ["two_object", "counting", "position", "color_attr"])
def test_arrangement_reads_count_colour_and_relation_but_not_shape(task):
    samples = [s for s in _samples(task, 16) if len({r.color for r in s.spec.objects}) == len(s.spec.objects)]
    assert len(samples) >= 4
    for s in samples:
        reshaped = _with_objects(s.scene, _reshaped(s.scene.objects, s.spec))
        fewer = _with_objects(s.scene, s.scene.objects[:-1])
        other = _unasked(s.spec, "color", ["red", "green", "blue", "purple"])
        recoloured = _with_objects(s.scene, [o.model_copy(update={"color": other}) for o in s.scene.objects])
        a, b, c = score_t2i([render(reshaped), render(fewer), render(recoloured)], [s.spec] * 3)
        assert not a.correct and a.components["arrangement_ok"] is True
        assert b.components["arrangement_ok"] is False
        coloured = all(r.color for r in s.spec.objects)  # "three triangles" asks for no colour
        assert c.components["arrangement_ok"] is not coloured


def test_arrangement_of_position_needs_the_relation():
    for s in _samples("position"):
        axis = "x" if s.spec.relation.relation in ("left of", "right of") else "y"
        mirrored = _with_objects(s.scene, _reshaped([_mirror(o, 64, axis) for o in s.scene.objects], s.spec))
        (sc,) = score_t2i([render(mirrored)], [s.spec])
        assert sc.components["arrangement_ok"] is False


def test_arrangement_of_a_same_colour_pair_is_decided_by_shape_or_not_at_all():
    from unipic.data.shapes.score import arrangement_ok
    from unipic.data.shapes.t2i import T2ISpec

    spec = T2ISpec.model_validate({"task": "position", "caption": "a red circle left of a red square",
                                   "objects": [{"shape": "circle", "color": "red"}, {"shape": "square", "color": "red"}],
                                   "relation": {"subject": 0, "relation": "left of", "reference": 1}})
    left, right = (2, 20, 12, 30), (40, 20, 50, 30)
    obj = lambda shape, bbox: {"shape": shape, "color": "red", "bbox": bbox}  # noqa: E731
    assert arrangement_ok([obj("circle", left), obj("square", right)], spec)
    assert arrangement_ok([obj("circle", left), obj("triangle", right)], spec)
    assert not arrangement_ok([obj("square", left), obj("circle", right)], spec)
    assert not arrangement_ok([obj("triangle", left), obj("triangle", right)], spec)


def test_blank_image_scores_zero():
    s = _samples("two_object")[0]
    (sc,) = score_t2i([np.full((64, 64, 3), 255, np.uint8)], [s.spec.model_dump()])
    assert not sc.correct and sc.score == 0.0 and "nothing" in sc.reason


def test_noise_is_invisible_to_correctness_but_not_to_cleanliness():
    s = _samples("colors")[0]
    img = render(s.scene).astype(np.float32)
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    (sc,) = score_t2i([noisy], [s.spec])
    assert sc.correct and sc.cleanliness < 0.6
    assert cleanliness([img.astype(np.uint8), noisy])[0] == 1.0


def test_mismatched_lengths_raise():
    s = _samples("colors")[0]
    with pytest.raises(ValueError, match="images"):
        score_t2i([render(s.scene)], [s.spec, s.spec])


@pytest.mark.parametrize("category", EDIT_CATEGORIES)
def test_edit_ground_truth_scores_one_and_untouched_source_scores_zero(category):
    edits = _edits(category)
    src = [render(e.source) for e in edits]
    tgt = [render(e.target) for e in edits]
    specs = [e.spec for e in edits]
    for sc in score_edit(src, tgt, specs):
        assert sc.success and sc.overall == 1.0 and sc.preservation == 1.0 and sc.reason == "ok", sc.reason
    for sc in score_edit(src, src, specs):
        assert not sc.instruction_satisfied and sc.overall == 0.0 and sc.preservation == 1.0


@pytest.mark.parametrize("category", EDIT_CATEGORIES)
def test_edit_that_changes_everything_scores_low(category):
    edits = _edits(category, 6)
    others = [make_t2i_sample(CFG.model_copy(update={"background": "black", "seed": 99}), i) for i in range(6)]
    src = [render(e.source) for e in edits]
    out = [render(o.scene) for o in others]
    scores = score_edit(src, out, [e.spec for e in edits])
    assert all(not sc.success for sc in scores)
    assert np.mean([sc.overall for sc in scores]) < 0.35


def test_edit_that_also_breaks_an_untouched_object_loses_preservation():
    e = next(e for e in _edits("recolor", 40) if len(e.source.objects) >= 2)
    j = e.spec.preserved[0]
    broken = list(e.target.objects)
    broken[j] = broken[j].model_copy(update={"color": "orange" if broken[j].color != "orange" else "blue"})
    (sc,) = score_edit([render(e.source)], [render(_with_objects(e.target, broken))], [e.spec])
    assert sc.instruction_satisfied and not sc.success
    assert sc.preservation < 1.0 and 0 < sc.overall < 1.0
    assert "changed or missing" in sc.reason


def test_edit_wrong_colour_and_background_change():
    e = _edits("recolor")[0]
    i = e.spec.target
    t = e.target.objects[i]
    wrong_colour = [o if k != i else t.model_copy(update={"color": next(
        c for c in ("red", "green", "blue", "yellow") if c not in (t.color, e.spec.target_object.color))})
        for k, o in enumerate(e.target.objects)]
    a, b = score_edit(
        [render(e.source)] * 2,
        [render(_with_objects(e.target, wrong_colour)), render(e.target.model_copy(update={"background": "gray"}))],
        [e.spec, e.spec.model_dump()],
    )
    assert not a.instruction_satisfied and a.overall == 0.0
    assert b.instruction_satisfied and b.components["background_ok"] is False and b.preservation < 1.0


def test_move_in_the_wrong_direction_fails():
    e = _edits("move")[0]
    d = e.spec.params["direction"]
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[d]
    spec = e.spec.model_copy(update={"params": {"direction": opposite}})
    (sc,) = score_edit([render(e.source)], [render(e.target)], [spec])
    assert not sc.instruction_satisfied and sc.overall == 0.0


def test_edit_scores_work_across_resolutions():
    e = _edits("replace")[0]
    (sc,) = score_edit([render(e.source, 128)], [render(e.target, 128)], [e.spec])
    assert sc.success


def test_edit_output_at_another_resolution_is_judged_in_the_source_frame():
    for category in ("move", "recolor", "resize"):
        e = _edits(category)[0]
        (good,) = score_edit([render(e.source)], [render(e.target, 128)], [e.spec])
        (bad,) = score_edit([render(e.source)], [render(e.source, 128)], [e.spec])
        assert good.success, (category, good.reason)
        assert not bad.instruction_satisfied and bad.preservation == 1.0


def test_summaries_use_unweighted_task_means():
    from unipic.data.shapes import summarize_edit, summarize_t2i

    colors = _samples("colors", 4)
    counting = _samples("counting", 1)
    images = [render(s.scene) for s in colors] + [np.full((64, 64, 3), 255, np.uint8)]
    scores = score_t2i(images, [s.spec for s in colors + counting])
    summary = summarize_t2i(scores)
    assert summary["tasks"]["colors"]["accuracy"] == 1.0 and summary["tasks"]["counting"]["accuracy"] == 0.0
    assert summary["overall"] == 0.5 and summary["n"] == 5
    edits = _edits("remove", 3)
    es = score_edit([render(e.source) for e in edits], [render(e.target) for e in edits[:2]] + [render(edits[2].source)],
                    [e.spec for e in edits])
    s = summarize_edit(es)
    assert s["categories"]["remove"]["success"] == pytest.approx(2 / 3) and s["preservation"] == 1.0
