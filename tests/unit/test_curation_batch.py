"""Batched curation must be the per-sample curation, only faster: the same curated index (hashes, signals,
agreement), the same rejections in the same order, the same counters, on a source with every kind of
trouble."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from unipic.config import load_config
from unipic.data.curation import Sample
from unipic.data.curation.dedup import phash_bits, phash_bits_batch
from unipic.data.curation.local import curate_to_dir
from unipic.data.curation.scorers import ShapesDetectorScorer
from unipic.data.curation.signals import image_signals, image_signals_batch
from unipic.data.curation.sources import ShapesWorldSource


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def troubled_source(rng: np.random.Generator) -> list[Sample]:
    """ShapesWorld T2I + edits at 64 px, plus corrupt, duplicate, odd-size, noisy, blotched, dark, spec-less
    and wrong-mode rows, shuffled so every batch mixes them."""
    cfg = load_config("ci", ["shapes.image_size=64", "shapes.n_t2i=90", "shapes.n_edit=40"])
    base = list(ShapesWorldSource(cfg.shapes))
    extra: list[Sample] = []
    for i, s in enumerate(base[:60]):
        px = _decoded(s.image)
        copy = dataclasses.replace
        if i % 6 == 0:
            extra.append(copy(s, sample_id=f"trunc{i}", image=s.image[: len(s.image) // 2]))
        if i % 6 == 1:
            extra.append(copy(s, sample_id=f"dupbytes{i}"))
            extra.append(copy(s, sample_id=s.sample_id))  # duplicate id
        if i % 6 == 2:
            noisy = np.clip(px + rng.normal(0, rng.uniform(1, 30), px.shape), 0, 255).astype(np.uint8)
            extra.append(copy(s, sample_id=f"noisy{i}", image=_png(noisy)))
        if i % 6 == 3:
            blot = px.copy()
            y, x = rng.integers(0, 50, 2)
            blot[y:y + 12, x:x + 12] = rng.integers(0, 256, 3)
            extra.append(copy(s, sample_id=f"blot{i}", image=_png(blot)))
            extra.append(copy(s, sample_id=f"dark{i}", image=_png((px // 40).astype(np.uint8))))
        if i % 6 == 4:
            odd = np.asarray(Image.fromarray(px).resize((80, 56)))
            extra.append(copy(s, sample_id=f"odd{i}", image=_png(odd), meta={}))
            big = np.asarray(Image.fromarray(px).resize((200, 200)))
            extra.append(copy(s, sample_id=f"big{i}", image=_png(big)))
            huge = np.asarray(Image.fromarray(px).resize((300, 300)))
            extra.append(copy(s, sample_id=f"huge{i}", image=_png(huge)))
            extra.append(copy(s, sample_id=f"rgba{i}", image=_png(np.dstack([px, px[..., :1]]), "RGBA")))
        if i % 6 == 5:
            extra.append(copy(s, sample_id=f"nearcopy{i}", image=_png(np.clip(px.astype(int) + 1, 0, 255)
                                                                        .astype(np.uint8))))
            extra.append(copy(s, sample_id=f"empty{i}", image=b""))
    rows = base + extra
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _curate(samples: list[Sample], batch_size: int, out: Path) -> tuple[dict, pd.DataFrame, str]:
    cfg = load_config("ci", [f"curation.batch_size={batch_size}", "curation.thresholds.min_agreement=0.7",
                             "curation.thresholds.min_exposure=0.03",
                             "curation.thresholds.min_side=32", "curation.thresholds.max_side=256",
                             "curation.gate.min_rows=1"]).curation
    fresh = [dataclasses.replace(s, pixels=None, target_pixels=None, signals={}, hashes={}, views={})
             for s in samples]
    report, index = curate_to_dir(fresh, cfg, out, scorer=ShapesDetectorScorer())
    counters = report.model_dump()
    for f in counters["filters"].values():
        f.pop("seconds")
    return counters, index, (out / "rejections.jsonl").read_text()


def test_batched_curation_equals_per_sample_on_a_troubled_source(tmp_path: Path) -> None:
    samples = troubled_source(np.random.default_rng(3))
    one, idx_one, rej_one = _curate(samples, 1, tmp_path / "one")
    many, idx_many, rej_many = _curate(samples, 16, tmp_path / "many")
    assert many == one
    pd.testing.assert_frame_equal(idx_many, idx_one, check_exact=True)
    assert rej_many == rej_one
    reasons = {json.loads(line)["reason"] for line in rej_one.splitlines()}
    # The source really exercised the filters both paths must agree on.
    for reason in ("source:duplicate_id", "decode:truncated", "decode:zero_size", "decode:wrong_mode_RGBA",
                   "resolution:too_large", "exact_dedup:duplicate", "near_dup:duplicate",
                   "quality:underexposed", "quality:disagreement"):
        assert reason in reasons, reason
    assert one["n_out"] > 50 and idx_one["agreement"].notna().sum() > 50
    assert idx_one["agreement"].isna().any()  # the spec-less odd-size rows
    assert idx_one["sample_id"].str.startswith("big").any()  # 200 px: analysed on a reduced view


def test_decode_makes_the_analysis_view_the_lazy_path_would() -> None:
    from unipic.config.curation import CurationConfig
    from unipic.data.curation.decode import DecodeFilter
    from unipic.data.curation.signals import analysis_view

    rng = np.random.default_rng(5)
    f = DecodeFilter(CurationConfig())
    for h, w in ((256, 256), (300, 200), (129, 400), (128, 128), (513, 511)):
        px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        s = Sample("a", "edit", "recolor", "make it red", _png(px), _png(px[::-1].copy()))
        assert f(s) is None
        assert set(s.views) == ({"image", "target"} if max(h, w) > 128 else set())
        for which, pixels in (("image", s.pixels), ("target", s.target_pixels)):
            assert np.array_equal(s.analysis(which), analysis_view(pixels))


def test_decode_batch_puts_same_shape_views_into_one_stack_with_the_same_pixels() -> None:
    from unipic.config.curation import CurationConfig
    from unipic.data.curation.decode import DecodeFilter
    from unipic.data.curation.stacks import gather

    rng = np.random.default_rng(6)
    shapes = [(64, 64), (64, 64), (48, 80), (256, 256), (64, 64), (256, 256), (48, 80), (30, 30)]
    rows = [Sample(str(i), "t2i", "t", "x", _png(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
            for i, (h, w) in enumerate(shapes)]
    rows.append(Sample("rgba", "t2i", "t", "x", _png(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA")))
    rows.append(Sample("cut", "t2i", "t", "x", rows[0].image[:100]))
    alone = [dataclasses.replace(s, views={}, slots={}) for s in rows]
    f, g = DecodeFilter(CurationConfig()), DecodeFilter(CurationConfig())
    assert f.process_batch(rows) == [g(s) for s in alone]
    for s, t in zip(rows[:8], alone[:8], strict=True):
        assert np.array_equal(s.pixels, t.pixels) and np.array_equal(s.analysis("image"), t.analysis("image"))
    stacks = {id(s.slots["image"][0]) for s in rows[:8] if "image" in s.slots}
    assert len(stacks) == 3 and "image" not in rows[7].slots  # 64, 48x80, the 128 px reduced views; 30 px alone
    for s in rows[:7]:
        stack, row = s.slots["image"]
        assert s.views["image"] is not None and np.shares_memory(s.analysis("image"), stack[row])
    groups, other = gather(rows[:8] + alone[:2], "image")
    assert other == [] and sorted(p for g in groups for p in g.positions) == list(range(10))
    for grp in groups:
        for p, r in zip(grp.positions, grp.rows.tolist(), strict=True):
            assert np.array_equal(grp.stack[r], (rows[:8] + alone[:2])[p].analysis("image"))


def test_signal_and_hash_batches_are_bit_identical_to_one_image_at_a_time() -> None:
    rng = np.random.default_rng(0)
    views = [rng.integers(0, 256, (h, w, c), dtype=np.uint8) for h, w in ((64, 64), (48, 80), (2, 40))
             for c in (3, 3, 4)]
    views += [views[0] // 64 * 64, np.zeros((64, 64, 3), np.uint8),
              rng.integers(0, 256, (64, 64), dtype=np.uint8)]
    assert image_signals_batch(views) == [image_signals(v) for v in views]
    for channels in ("rgb", "luma"):
        for got, v in zip(phash_bits_batch(views, 8, channels), views, strict=True):
            assert np.array_equal(got, phash_bits(v, 8, channels))


def test_batches_end_at_the_size_or_the_encoded_byte_budget(monkeypatch) -> None:
    from unipic.data.curation import pipeline

    monkeypatch.setattr(pipeline, "BATCH_BYTES", 100)
    rows = [Sample(str(i), "t2i", "t", "x", b"\0" * n) for i, n in enumerate([10, 10, 90, 5, 5, 5, 200, 1])]
    sizes = [[len(s.image or b"") for s in b] for b in pipeline._batches(rows, 3)]
    assert sizes == [[10, 10, 90], [5, 5, 5], [200], [1]]
    assert [len(b) for b in pipeline._batches(rows, 64)] == [3, 4, 1]


def _stacks_to_hash(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    """Noise, flat scenes with a blotch, and black/white speckle (extreme sums): the hash input's hard cases."""
    noise = rng.integers(0, 256, (6, h, w, 3), dtype=np.uint8)
    flat = np.repeat(rng.integers(0, 256, (6, 1, 1, 3), dtype=np.uint8), h, 1).repeat(w, 2)
    flat[:, h // 4:h // 2, w // 3:w // 2] = rng.integers(0, 256, 3)
    speckle = (rng.integers(0, 2, (6, h, w, 1)) * 255).repeat(3, 3).astype(np.uint8)
    return [noise, flat, speckle]


@pytest.mark.parametrize(("h", "w"), [(64, 64), (128, 128), (96, 96), (32, 32), (64, 128), (128, 64),
                                      (48, 80), (77, 77), (160, 160), (256, 256)])
def test_stacked_hash_resize_is_pillows_bilinear_resize_bit_for_bit(h: int, w: int) -> None:
    """The stack path of the pHash resize (the whole-row kernel where the scale is an integer factor, else
    `_resample`) must equal Pillow on every row asked for, in any order; 64 and 128 px (the analysis views of
    64, 256 and 512 px renders) must take the whole-row kernel."""
    from unipic.data.curation.dedup import _uniform_spans, stack_hash_inputs

    rng = np.random.default_rng(h * 1000 + w)
    for stack in _stacks_to_hash(rng, h, w):
        rows = rng.permutation(len(stack))[:5]
        got = stack_hash_inputs(stack, rows, 32)
        assert got is not None
        want = np.stack([np.asarray(Image.fromarray(stack[r]).resize((32, 32), Image.Resampling.BILINEAR),
                                    np.float32) for r in rows])
        assert np.array_equal(got, want)
    if (h, w) in ((64, 64), (128, 128)):
        assert _uniform_spans(h, w, 32) == ((1, 31), (1, 31))


def test_the_whole_row_resize_is_used_only_where_no_clip_is_needed() -> None:
    """`uniform_span` skips Pillow's clip, so it must refuse taps whose sum could pass 255 (or negative taps)."""
    from unipic.data.curation.dedup import _bilinear_coeffs
    from unipic.data.curation.resize import _NO_CLIP_SUM, uniform_span

    taps, bounds = _bilinear_coeffs(64, 32)
    assert uniform_span(taps, bounds, 64) == (1, 31)
    assert (2**21 + 255 * _NO_CLIP_SUM) >> 22 == 255 and (2**21 + 255 * (_NO_CLIP_SUM + 1)) >> 22 == 256
    heavy = taps.copy()
    heavy[5, 0] += _NO_CLIP_SUM - int(taps[5].sum()) + 1
    assert uniform_span(heavy, bounds, 64) is None
    negative = taps.copy()
    negative[5, 0] = -1
    assert uniform_span(negative, bounds, 64) is None
    assert uniform_span(*_bilinear_coeffs(77, 32), 77) is None  # not an integer factor


@pytest.mark.parametrize(("h", "w"), [(64, 64), (128, 128), (128, 77), (48, 80), (3, 3), (2, 2), (1, 5)])
def test_stacked_signal_sums_equal_the_per_image_sums(h: int, w: int) -> None:
    """The stack kernel's int32 fast path gives the per-image int64 sums exactly, extremes included."""
    from unipic.data.curation.signals import _signal_sums, stack_sums

    rng = np.random.default_rng(h * 7 + w)
    stack = rng.integers(0, 256, (8, h, w, 3), dtype=np.uint8)
    stack[1], stack[2] = 0, 255
    stack[3] = (rng.integers(0, 2, (h, w, 1)) * 255).repeat(3, 2)
    rows = np.array([3, 1, 2, 0, 7, 5])
    assert np.array_equal(stack_sums(stack, rows), np.stack([_signal_sums(stack[r]) for r in rows]))
