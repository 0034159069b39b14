"""Each curation filter on hand-made images: what it rejects, with which reason, and what it keeps."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from unipic.config.curation import CurationConfig
from unipic.data.curation import Curator, Sample
from unipic.data.curation.decode import DecodeFilter
from unipic.data.curation.dedup import ExactDedupFilter, HammingIndex, NearDupFilter, bits_to_int, phash_bits
from unipic.data.curation.edit import EditPairFilter
from unipic.data.curation.geometry import ResolutionFilter
from unipic.data.curation.quality import QualityFilter
from unipic.data.curation.scorers import NoScorer
from unipic.data.curation.signals import change_ratio, image_signals
from unipic.data.curation.text import TextFilter, text_reason


def png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def scene(colour: str = "red", xy: tuple[int, int] = (8, 8), size: int = 32, r: int = 6,
          shape: str = "circle", bg: str = "white", wh: tuple[int, int] | None = None) -> Image.Image:
    im = Image.new("RGB", wh or (size, size), bg)
    d = ImageDraw.Draw(im)
    box = (xy[0], xy[1], xy[0] + 2 * r, xy[1] + 2 * r)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colour)
    return im


def t2i(sid: str, im: Image.Image | bytes | None, text: object = "a red circle", task: str = "single_object") -> Sample:
    data = im if isinstance(im, (bytes, type(None))) else png(im)
    return Sample(sid, "t2i", task, text, data)


def edit(sid: str, a: Image.Image, b: Image.Image, text: str = "make the circle blue") -> Sample:
    return Sample(sid, "edit", "recolor", text, png(a), png(b))


CFG = CurationConfig(scorer={"kind": "none"})


def test_decode_rejects_zero_size_truncated_garbage_and_wrong_mode() -> None:
    f = DecodeFilter(CFG)
    good = png(scene())
    assert f(t2i("ok", good)) is None
    assert f(t2i("zero", b"")) == "decode:zero_size"
    assert f(t2i("trunc", good[: len(good) // 2])) == "decode:truncated"
    assert f(t2i("junk", b"not an image at all")) == "decode:undecodable"
    assert f(t2i("gray", png(scene().convert("L")))) == "decode:wrong_mode_L"
    assert f(t2i("rgba", png(scene().convert("RGBA")))) == "decode:wrong_mode_RGBA"
    assert f.passed == 1 and sum(f.rejected.values()) == 5


def test_decode_checks_both_images_of_an_edit() -> None:
    f = DecodeFilter(CFG)
    s = Sample("e", "edit", "recolor", "x", png(scene()), b"")
    assert f(s) == "decode:target_zero_size"


def test_resolution_and_aspect_limits_resolved_per_task() -> None:
    cfg = CurationConfig(scorer={"kind": "none"}, thresholds={"min_side": 16, "max_aspect": 2.0},
                         per_task={"counting": {"min_side": 48}})
    dec, res = DecodeFilter(cfg), ResolutionFilter(cfg)

    def run(s: Sample) -> str | None:
        return dec(s) or res(s)

    assert run(t2i("a", scene(size=32))) is None
    assert run(t2i("b", scene(size=8, r=2))) == "resolution:too_small"
    assert run(t2i("c", scene(wh=(96, 32)))) == "resolution:aspect_ratio"
    assert run(t2i("d", scene(size=32), task="counting")) == "resolution:too_small"
    assert cfg.thresholds_for("counting").min_side == 48 and cfg.thresholds_for("colors").min_side == 16


def test_per_task_override_cannot_invert_limits() -> None:
    with pytest.raises(ValueError, match="min_side"):
        CurationConfig(per_task={"counting": {"min_side": 9999}})


@pytest.mark.parametrize(
    ("text", "reason"),
    [(None, "missing"), (math.nan, "missing"), (42, "non_text"), ("   ", "empty"), ("x" * 400, "too_long"),
     ("a " * 100, "too_many_words"), ("1234 5678 !!", "non_text"), ("bad\x00caption", "control_chars")],
)
def test_text_rejections(text: object, reason: str) -> None:
    assert TextFilter(CFG)(t2i("s", png(scene()), text=text)) == f"text:{reason}"


def test_text_accepts_and_strips() -> None:
    s = t2i("s", png(scene()), text="  a red circle  ")
    assert TextFilter(CFG)(s) is None and s.text == "a red circle"


def test_exact_dedup_on_bytes_and_on_edit_pairs() -> None:
    f = ExactDedupFilter(CFG)
    a, b, c = png(scene("red")), png(scene("blue")), png(scene("green"))
    assert f(t2i("1", a)) is None
    assert f(t2i("2", a)) == "exact_dedup:duplicate"
    assert f(Sample("e1", "edit", "recolor", "x", a, b)) is None
    assert f(Sample("e2", "edit", "recolor", "y", a, c)) is None  # same source, other target: kept
    assert f(Sample("e3", "edit", "recolor", "z", a, b)) == "exact_dedup:duplicate"


def _decoded(s: Sample) -> Sample:
    assert DecodeFilter(CFG)(s) is None
    return s


def test_phash_is_stable_under_small_changes_and_separates_colours() -> None:
    base = np.asarray(scene("red", (8, 8)))
    noisy = np.clip(base.astype(int) + np.random.default_rng(0).integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    moved = np.asarray(scene("red", (18, 16)))
    blue = np.asarray(scene("blue", (8, 8)))
    h = {k: phash_bits(v) for k, v in {"base": base, "noisy": noisy, "moved": moved, "blue": blue}.items()}
    dist = {k: int((h["base"] != v).sum()) for k, v in h.items()}
    assert dist["noisy"] <= 2 < dist["moved"]
    assert dist["blue"] > 4
    luma = {k: phash_bits(v, channels="luma") for k, v in {"base": base, "blue": blue}.items()}
    assert len(luma["base"]) == 64 and len(h["base"]) == 192


@pytest.mark.parametrize("h, w", [(64, 64), (128, 128), (128, 77), (77, 128), (50, 33), (100, 128), (31, 64),
                                  (128, 32), (32, 32), (40, 40), (129, 127), (96, 128)])
def test_the_hash_resize_is_pillows_bilinear_resize_bit_for_bit(h: int, w: int) -> None:
    """The compiled resize must be Pillow's, on noise and on flat scenes, for square and odd shapes (where
    Pillow runs its passes in the other order), and be the path actually taken for RGB views."""
    from unipic.data.curation.dedup import _pass_order, bilinear_resize

    rng = np.random.default_rng(h * 1000 + w)
    flat = np.asarray(scene("red", (4, 4), wh=(w, h), r=min(h, w) // 3))
    blotched = flat.copy()
    blotched[h // 3:h // 2, w // 4:w // 2] = rng.integers(0, 256, 3)
    for img in (rng.integers(0, 256, (h, w, 3), dtype=np.uint8), flat, blotched):
        for side in (32, 16):
            want = np.asarray(Image.fromarray(img).resize((side, side), Image.Resampling.BILINEAR), np.float32)
            assert np.array_equal(bilinear_resize(img, side), want)
    assert _pass_order(h, w, 32) is not None
    grey = rng.integers(0, 256, (h, w), dtype=np.uint8)  # not RGB: Pillow itself
    want = np.asarray(Image.fromarray(grey).resize((32, 32), Image.Resampling.BILINEAR), np.float32)
    assert np.array_equal(bilinear_resize(grey, 32), want)


def test_text_fast_paths_give_the_per_character_verdicts() -> None:
    """The ASCII / printable shortcuts must give the verdicts of the plain per-character definition, on
    strings mixing control characters, Unicode spaces and separators, non-ASCII letters and digits."""
    import random
    import unicodedata

    def plain(text: str) -> str | None:
        stripped = text.strip()
        if not stripped:
            return "empty"
        if len(stripped.split()) > 8:
            return "too_many_words"
        if any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in stripped):
            return "control_chars"
        visible = [c for c in stripped if not c.isspace()]
        return "non_text" if sum(c.isalpha() for c in visible) / len(visible) < 0.5 else None

    rnd = random.Random(0)
    alphabet = "abcXYZ 12!?\t\n\x00\x07\x1c\x1f\x7f\x85\u00a0\u2028\u00e9\u00df\u6f22\u0663\u200b\x0b\x0c\r"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))) for _ in range(20_000)]
    got = [text_reason(t, 1, 1000, 8, 0.5) for t in texts]
    assert got == [plain(t) for t in texts]
    assert {"control_chars", "non_text", None} <= set(got)


def _brute_force_kept(bits: np.ndarray, radius: int) -> list[bool]:
    kept = np.zeros((len(bits), bits.shape[1]), dtype=bool)
    n, out = 0, []
    for b in bits:
        dup = n > 0 and int((kept[:n] != b).sum(axis=1).min()) <= radius
        out.append(not dup)
        if not dup:
            kept[n] = b
            n += 1
    return out


@pytest.mark.parametrize(("n_bits", "radius"), [(192, 10), (64, 3), (75, 4), (384, 0), (130, 1)])
def test_hamming_index_keeps_exactly_what_a_brute_force_search_keeps(n_bits: int, radius: int) -> None:
    """Clustered hashes (many within and just outside the radius), in batches of any size, past the first
    allocation: the same verdicts as comparing every pair; bands wider than 64 bits (radius 0) included."""
    rng = np.random.default_rng(n_bits + radius)
    centres = rng.random((60, n_bits)) < 0.2
    bits = centres[rng.integers(0, 60, 1500)]
    flips = rng.random(bits.shape) < rng.uniform(0, 2.5 * (radius + 1) / n_bits, (len(bits), 1))
    bits = bits ^ flips
    want = _brute_force_kept(bits, radius)
    assert 50 < sum(want) < len(want) - 50
    idx = HammingIndex(n_bits, radius)
    got: list[bool] = []
    for a, b in ((0, 1), (1, 65), (65, 700), (700, 701), (701, 1500)):
        got += idx.add_unless_near(bits[a:b]).tolist()
    assert got == want
    assert bits_to_int(np.array([1, 0, 1], dtype=bool)) == 0b101


@pytest.mark.parametrize(("n_bits", "radius"), [(192, 10), (64, 0), (200, 1), (384, 2), (130, 0), (7, 3)])
def test_hamming_keys_are_the_packed_bits_and_folded_bands(n_bits: int, radius: int) -> None:
    """The compiled packing gives the words (first bit most significant, zero padded) and band keys (64-bit
    chunks, rotate-left-by-one then xor) as their numpy definitions do, bands wider than 64 bits included."""
    idx = HammingIndex(n_bits, radius)
    bits = np.random.default_rng(n_bits).random((40, n_bits)) < np.linspace(0, 1, 40)[:, None]
    padded = np.zeros((len(bits), idx._n_words * 64), dtype=bool)
    padded[:, :n_bits] = bits
    words = np.packbits(padded, axis=1).view(">u8").astype(np.uint64)
    bands = np.zeros((len(bits), len(idx._edges) - 1), dtype=np.uint64)
    for b, (lo, hi) in enumerate(zip(idx._edges[:-1], idx._edges[1:], strict=True)):
        for start in range(lo, hi, 64):
            chunk = bits[:, start:min(start + 64, hi)].astype(np.uint64)
            value = (chunk << np.arange(chunk.shape[1] - 1, -1, -1, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
            bands[:, b] = ((bands[:, b] << np.uint64(1)) | (bands[:, b] >> np.uint64(63))) ^ value
    got_words, got_bands = idx._pack(bits)
    assert np.array_equal(got_words, words) and np.array_equal(got_bands, bands)
    assert got_bands.any() and (n_bits > 64 * (radius + 1)) == (max(np.diff(idx._edges)) > 64)


def test_near_dup_removes_reencoded_copies_but_keeps_distinct_scenes() -> None:
    f = NearDupFilter(CurationConfig(scorer={"kind": "none"}, dedup={"max_hamming": 10}))
    red = scene("red")
    assert f(_decoded(t2i("1", png(red)))) is None
    jpeg_copy = Image.open(io.BytesIO(png(red, "JPEG"))).convert("RGB")
    assert f(_decoded(t2i("2", png(jpeg_copy)))) == "near_dup:duplicate"
    assert f(_decoded(t2i("3", png(scene("blue"))))) is None
    assert f(_decoded(t2i("4", png(scene("red", (18, 18)))))) is None
    # an edit is a pair: same source, different target is not a duplicate
    assert f(_decoded(edit("e1", red, scene("blue")))) is None
    assert f(_decoded(edit("e2", red, scene("green", (18, 4))))) is None
    assert f(_decoded(edit("e3", jpeg_copy, scene("blue")))) == "near_dup:duplicate"


def test_edit_pair_rejects_no_op_and_total_change() -> None:
    f = EditPairFilter(CFG)
    red = scene("red")
    assert f(_decoded(edit("ok", red, scene("blue")))) is None
    assert f(_decoded(edit("noop", red, red.copy()))) == "edit:no_op"
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert f(_decoded(edit("all", red, noise))) == "edit:changes_everything"
    bg = CurationConfig(scorer={"kind": "none"}, per_task={"background": {"edit_max_change": 0.99}})
    s = _decoded(Sample("bg", "edit", "background", "make it dark", png(red), png(scene("red", bg="black"))))
    assert EditPairFilter(bg)(s) is None and s.signals["change_ratio"] > 0.8
    assert EditPairFilter(bg)(_decoded(Sample("n", "edit", "background", "x", png(red), png(noise)))) is not None
    s = _decoded(edit("r", red, scene("blue")))
    f(s)
    assert 0.05 < s.signals["change_ratio"] < 0.3


def test_signals_respond_to_blur_grey_and_darkness() -> None:
    sharp = scene("red", r=10)
    s_sharp = image_signals(np.asarray(sharp))
    s_blur = image_signals(np.asarray(sharp.filter(ImageFilter.GaussianBlur(2))))
    s_grey = image_signals(np.asarray(sharp.convert("L").convert("RGB")))
    s_dark = image_signals(np.asarray(scene("red", bg="black")))
    assert s_blur["sharpness"] < 0.5 * s_sharp["sharpness"]
    assert s_grey["colourfulness"] < 1e-6 < s_sharp["colourfulness"]
    assert s_dark["exposure"] < 0.2 < s_sharp["exposure"] <= 1.0
    assert change_ratio(np.asarray(sharp), np.asarray(sharp), 10) == 0.0


def test_quality_thresholds_reject_with_reasons() -> None:
    cfg = CurationConfig(scorer={"kind": "none"},
                         thresholds={"min_sharpness": 50.0, "min_colourfulness": 5.0, "min_exposure": 0.2})
    f = QualityFilter(cfg, NoScorer())
    assert f(_decoded(t2i("ok", scene("red", r=10)))) is None
    assert f(_decoded(t2i("blur", scene("red", r=10).filter(ImageFilter.GaussianBlur(4))))) == "quality:blurry"
    assert f(_decoded(t2i("grey", scene("black", r=10)))) == "quality:dull"
    assert f(_decoded(t2i("dark", scene("red", r=10, bg="black")))) == "quality:underexposed"


class _FixedScorer:
    name = "fixed"

    def __init__(self, value: float | None) -> None:
        self.value = value

    def score(self, sample: Sample) -> float | None:
        return self.value


def test_agreement_threshold_uses_the_pluggable_scorer() -> None:
    cfg = CurationConfig(scorer={"kind": "none"}, thresholds={"min_agreement": 0.5})
    assert QualityFilter(cfg, _FixedScorer(0.2))(_decoded(t2i("a", scene()))) == "quality:disagreement"
    s = _decoded(t2i("b", scene()))
    assert QualityFilter(cfg, _FixedScorer(0.9))(s) is None and s.signals["agreement"] == 0.9
    s = _decoded(t2i("c", scene()))
    assert QualityFilter(cfg, _FixedScorer(None))(s) is None and math.isnan(s.signals["agreement"])


def test_curator_counts_in_out_and_reasons_per_task() -> None:
    red, blue = png(scene("red")), png(scene("blue", (16, 4)))
    samples = [t2i("1", red), t2i("1", blue), t2i("2", red), t2i("3", b""), t2i("4", blue, text=None),
               t2i("5", blue, task="counting"), Sample("6", "t2i", "x", "a caption", None, defect="missing_file")]
    cur = Curator(CFG, scorer=NoScorer())
    rejected: list[tuple[str, str]] = []
    kept = [s.sample_id for s in cur.run(samples, on_reject=lambda s, r: rejected.append((s.sample_id, r)))]
    rep = cur.report()
    assert kept == ["1", "5"]
    assert rep.n_in == 7 and rep.n_out == 2 and rep.n_rejected == 5
    assert rep.rejected == {"source:duplicate_id": 1, "exact_dedup:duplicate": 1, "decode:zero_size": 1,
                            "text:missing": 1, "source:missing_file": 1}
    assert rep.out_by_task == {"counting": 1, "single_object": 1}
    assert ("3", "decode:zero_size") in rejected
    assert rep.filters["decode"]["seen"] == 4
