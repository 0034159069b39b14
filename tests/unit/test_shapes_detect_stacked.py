"""The stacked detector (what `detect_batch` runs on same-size images) must give exactly the per-image
detections: objects, boxes, areas, matches, background, and the float rms values, on clean renders of every
task, on noisy and blotched ("generated-looking") images, on odd sizes and on images with no objects."""

from __future__ import annotations

import numpy as np
import pytest

from unipic.config.data import ShapesConfig
from unipic.data.shapes import ShapesDetector, make_edit_sample, make_t2i_sample, render
from unipic.data.shapes.detect_stacked import detect_stacked

DET = ShapesDetector()


def _renders(size: int, n: int) -> np.ndarray:
    """T2I renders over every task, and edit sources and targets over every category."""
    cfg = ShapesConfig(image_size=size)
    imgs = [render(make_t2i_sample(cfg, i).scene) for i in range(n)]
    for i in range(n // 2):
        e = make_edit_sample(cfg, i)
        imgs += [render(e.source), render(e.target)]
    return np.stack(imgs)


def _generated_looking(imgs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of random strength (none on some), blurred edges and random-colour patches."""
    out = imgs.astype(np.float32)
    sigma = rng.uniform(0, 25, (len(out), 1, 1, 1)) * (rng.random((len(out), 1, 1, 1)) < 0.7)
    out += rng.normal(0, 1, out.shape) * sigma
    out[1::3] = (out[1::3] + np.roll(out[1::3], 1, axis=1) + np.roll(out[1::3], 1, axis=2)) / 3
    h, w = imgs.shape[1:3]
    for img in out[::2]:
        for _ in range(rng.integers(1, 6)):
            y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
            img[y:y + rng.integers(1, 10), x:x + rng.integers(1, 10)] = rng.integers(0, 256, 3)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _assert_same(imgs: np.ndarray) -> None:
    want = [DET.detect(img) for img in imgs]
    assert DET.detect_batch(imgs) == want
    assert detect_stacked(imgs, DET.min_area(min(imgs.shape[1:3]))) == want


@pytest.mark.parametrize("size", [32, 64, 128])
def test_stacked_equals_per_image_on_renders_of_every_task(size: int) -> None:
    imgs = _renders(size, 160 if size < 128 else 60)
    _assert_same(imgs)
    assert sum(len(d.objects) for d in DET.detect_batch(imgs[:20])) >= 20


@pytest.mark.parametrize("size", [32, 64, 128])
def test_stacked_equals_per_image_on_noisy_and_blotched_images(size: int) -> None:
    rng = np.random.default_rng(size)
    imgs = _generated_looking(_renders(size, 120 if size < 128 else 40), rng)
    dets = DET.detect_batch(imgs)
    assert any(d.object_rms > 0 for d in dets) and any(d.background_rms > 0 for d in dets)
    _assert_same(imgs)


@pytest.mark.parametrize("size", [256, 512])
def test_stacked_equals_per_image_on_box_reduced_views(size: int) -> None:
    """What curation scores: renders box-reduced to the <= 128 px analysis view (blended edge pixels)."""
    from unipic.data.curation.signals import analysis_view

    imgs = np.stack([analysis_view(img) for img in _renders(size, 40)])
    assert any(d.background_rms > 0 for d in DET.detect_batch(imgs))
    _assert_same(imgs)
    _assert_same(_generated_looking(imgs, np.random.default_rng(size)))


def test_stacked_equals_per_image_on_pure_noise_odd_sizes_and_empty_images() -> None:
    rng = np.random.default_rng(1)
    _assert_same(rng.integers(0, 256, (12, 40, 72, 3), dtype=np.uint8))
    _assert_same(np.full((3, 32, 32, 3), 128, np.uint8))
    flat = np.full((4, 24, 24, 3), 255, np.uint8)
    flat[:, 5:15, 5:15] = (215, 25, 35)
    flat[1, 5:15, 5:15] += 1
    _assert_same(flat)


def test_detect_batch_mixes_sizes_and_keeps_input_order() -> None:
    a, b = _renders(32, 6), _renders(48, 6)
    mixed = [a[0], b[0], a[1], b[1], b[2], a[2][None][0].astype(np.float32) / 255.0]
    assert DET.detect_batch(mixed) == [DET.detect(img) for img in mixed]


def test_segment_stack_reads_any_rows_of_a_stack_as_detect_reads_each_image() -> None:
    """What curation scores: rows of a batch stack (a subset, reordered, repeated), objects as arrays."""
    from unipic.data.shapes.detect import _COLOR_NAMES
    from unipic.data.shapes.detect_stacked import SHAPE_COL, object_boxes, segment_stack
    from unipic.data.shapes.world import SHAPES

    imgs = _generated_looking(_renders(48, 60), np.random.default_rng(9))
    rows = np.array([5, 3, 3, 70, 0, 41, 12, 89])
    seg = segment_stack(imgs, rows, DET.min_area(48))
    assert len(seg.starts) == len(rows) + 1
    for i, r in enumerate(rows.tolist()):
        mine = seg.table[seg.starts[i]:seg.starts[i + 1]]
        got = list(zip([SHAPES[k] for k in mine[:, SHAPE_COL]], [_COLOR_NAMES[k - 1] for k in mine[:, 1]],
                       object_boxes(mine), seg.ious[seg.starts[i]:seg.starts[i + 1]].tolist(), strict=True))
        assert got == [(o.shape, o.color, o.bbox, o.match) for o in DET.detect(imgs[r]).objects]
    assert seg.starts[-1] >= len(rows)


def test_stacked_equals_per_image_on_blocky_images_with_repeated_rows() -> None:
    """The run labelling's own cases: palette blocks (rows equal to the row above, runs of one colour that
    touch only diagonally or through a one-pixel gap, interiors cut by the runs above and below), stripes."""
    from unipic.data.shapes.detect import _PALETTE

    rng = np.random.default_rng(4)
    cells = rng.integers(0, 3, (30, 8, 8))
    colours = np.vstack([[[250, 250, 250]], _PALETTE[:2]]).astype(np.uint8)
    blocks = colours[cells].repeat(5, 1).repeat(5, 2)
    _assert_same(blocks)
    _assert_same(_generated_looking(blocks, rng))
    stripes = np.full((4, 40, 40, 3), 250, np.uint8)
    stripes[:, 2:-2, 2:-2:3] = colours[1]
    stripes[1, 4::4, 2:-2] = colours[2]
    _assert_same(stripes)
