"""ShapesWorld scenes, rendering, determinism and the held-out split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unipic.config.data import BackgroundChoice, ColorChoice, ShapeChoice, ShapesConfig, SizeChoice
from unipic.data.shapes import (
    BACKGROUNDS,
    COLORS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    heldout_pairs,
    make_edit_sample,
    make_t2i_sample,
    relations,
    render,
)
from unipic.data.shapes import heldout as ho
from unipic.data.shapes.world import box_in_canvas, boxes_clear, gap_px


def test_config_vocabulary_matches_world():
    assert set(ColorChoice.__args__) == set(COLORS)
    assert set(ShapeChoice.__args__) == set(SHAPES)
    assert set(SizeChoice.__args__) == set(SIZES)
    assert set(BackgroundChoice.__args__) == set(BACKGROUNDS)


def test_palette_is_well_separated():
    cols = np.array(list(COLORS.values()), float)
    bgs = np.array(list(BACKGROUNDS.values()), float)
    d = np.linalg.norm(cols[:, None] - cols[None], axis=-1)
    assert d[~np.eye(len(cols), dtype=bool)].min() >= 95
    assert np.linalg.norm(cols[:, None] - bgs[None], axis=-1).min() >= 95


def test_render_is_flat_and_exact():
    scene = Scene(size=32, background="gray", objects=[
        SceneObject(shape="square", color="red", size="medium", bbox=(2, 3, 11, 12)),
        SceneObject(shape="circle", color="blue", size="large", bbox=(16, 16, 28, 28)),
    ])
    img = render(scene)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert colours == {BACKGROUNDS["gray"], COLORS["red"], COLORS["blue"]}
    red = np.all(img == COLORS["red"], axis=-1)
    ys, xs = np.nonzero(red)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (2, 3, 11, 12)
    assert red.sum() == 81


def test_scene_json_round_trip_and_resize():
    cfg = ShapesConfig(image_size=32)
    scene = make_t2i_sample(cfg, 3).scene
    blob = json.dumps(scene.to_dict())
    back = Scene.model_validate(json.loads(blob))
    assert back == scene
    assert np.array_equal(render(back), render(scene))
    big = render(scene, size=64)
    assert big.shape == (64, 64, 3)
    norm = scene.to_dict()["objects_norm"]
    assert all(0 <= v <= 1 for o in norm for v in o["bbox"])


@pytest.mark.parametrize("maker", [make_t2i_sample, make_edit_sample])
def test_sample_depends_only_on_seed_and_index(maker):
    a = maker(ShapesConfig(seed=5, n_t2i=10, n_edit=10), 17)
    b = maker(ShapesConfig(seed=5, n_t2i=9999, n_edit=3, shard_size=1), 17)
    c = maker(ShapesConfig(seed=6), 17)
    assert a == b
    assert a != c


def test_scenes_respect_canvas_and_gaps():
    cfg = ShapesConfig(image_size=32)
    for i in range(200):
        s = make_t2i_sample(cfg, i).scene
        boxes = [o.bbox for o in s.objects]
        for k, box in enumerate(boxes):
            assert box_in_canvas(box, 32)
            assert boxes_clear(box, boxes[:k] + boxes[k + 1:], gap_px(32))


def test_position_samples_satisfy_their_relation():
    cfg = ShapesConfig(t2i_tasks=["position"])
    for i in range(100):
        s = make_t2i_sample(cfg, i)
        rel = s.spec.relation
        a, b = s.scene.objects[rel.subject], s.scene.objects[rel.reference]
        assert relations(a.bbox, b.bbox) == {rel.relation}
        assert rel.relation in s.caption


def test_relations_follow_geneval():
    left, right = (0, 10, 8, 18), (20, 10, 28, 18)
    assert relations(left, right) == {"left of"}
    assert relations(right, left) == {"right of"}
    assert relations((10, 0, 18, 8), (10, 20, 18, 28)) == {"above"}
    assert relations((10, 10, 18, 18), (11, 11, 19, 19)) == set()


def test_heldout_pairs_one_colour_per_shape():
    pairs = heldout_pairs(("red", "green", "blue", "yellow"), ("circle", "square", "triangle"))
    assert sorted(s for _, s in pairs) == ["circle", "square", "triangle"]
    assert pairs == heldout_pairs(("red", "green", "blue", "yellow"), ("circle", "square", "triangle"))


def test_relation_key_is_canonical():
    assert ho.relation_key("red circle", "right of", "blue square") == ho.relation_key(
        "blue square", "left of", "red circle")
    assert ho.relation_key("a", "below", "b") == ho.relation_key("b", "above", "a")


def _t2i_keys(s):
    items = [r.item for r in s.spec.objects]
    if s.task in ("two_object", "color_attr"):
        return ho.pair_key(items)
    if s.task == "position":
        return ho.relation_key(items[0], s.spec.relation.relation, items[1])
    if s.task == "counting":
        return ho.count_key(s.spec.objects[0].count, items[0])
    return None


def test_train_and_heldout_never_share_a_composition():
    train_cfg = ShapesConfig(image_size=32)
    held_cfg = ShapesConfig(image_size=32, heldout=True)
    pairs = heldout_pairs(tuple(train_cfg.colors), tuple(train_cfg.shapes))
    train = [make_t2i_sample(train_cfg, i) for i in range(300)]
    held = [make_t2i_sample(held_cfg, i) for i in range(300)]
    assert {s.split for s in train} == {"train"} and {s.split for s in held} == {"heldout"}
    for s in train:
        assert not any((o.color, o.shape) in pairs for o in s.scene.objects)
    train_keys = {_t2i_keys(s) for s in train} - {None}
    held_keys = {_t2i_keys(s) for s in held} - {None}
    assert held_keys and train_keys and not (train_keys & held_keys)
    held_captions = {s.caption for s in held if s.task != "single_object"}
    assert not held_captions & {s.caption for s in train}
    edits_train = [make_edit_sample(train_cfg, i) for i in range(140)]
    for e in edits_train:
        objs = [*e.source.objects, *e.target.objects]
        assert not any((o.color, o.shape) in pairs for o in objs)
    edits_held = [make_edit_sample(held_cfg, i) for i in range(70)]
    assert {e.split for e in edits_held} == {"heldout"}
    for e in edits_held:
        objs = [*e.source.objects, *e.target.objects]
        item = e.spec.target_object.label if e.spec.target_object else None
        param = next(iter(e.spec.params.values()), "-") if e.category != "add" else " ".join(
            (e.spec.params["color"], e.spec.params["shape"]))
        key = ho.edit_key(e.category, item, param)
        assert any((o.color, o.shape) in pairs for o in objs) or ho.composition_heldout(key, 0.15)


def test_size_classes_stay_distinct_on_tiny_canvases():
    from unipic.data.shapes.world import side_px, size_class_of

    for canvas in (16, 20, 24, 32, 64, 512):
        sides = [side_px(s, canvas) for s in SIZES]
        assert sides == sorted(set(sides)) and sides[0] >= 5
        assert [size_class_of(side, canvas) for side in sides] == list(SIZES)


@pytest.mark.parametrize("size", [16, 24, 48])
def test_ground_truth_is_exact_at_any_canvas_size(size):
    from unipic.data.shapes import score_edit, score_t2i

    cfg = ShapesConfig(image_size=size)
    ts = [make_t2i_sample(cfg, i) for i in range(24)]
    es = [make_edit_sample(cfg, i) for i in range(21)]
    assert all(s.correct for s in score_t2i([render(s.scene) for s in ts], [s.spec for s in ts]))
    assert all(s.success for s in score_edit([render(e.source) for e in es], [render(e.target) for e in es],
                                             [e.spec for e in es]))
