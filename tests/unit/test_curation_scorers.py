"""Agreement scorers behind one interface: the ShapesWorld detector (exact on clean renders, low on a
mismatched caption) and CLIP (a tiny random model saved and loaded like real weights)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from unipic.config import load_config
from unipic.config.curation import CurationConfig, ScorerConfig
from unipic.data.curation.decode import DecodeFilter
from unipic.data.curation.quality import QualityFilter
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import ClipScorer, NoScorer, ShapesDetectorScorer, build_scorer, t2i_agreement
from unipic.data.curation.sources import ShapesWorldSource
from unipic.errors import ConfigError

CFG = CurationConfig(scorer={"kind": "none"})


def decoded(samples: list[Sample]) -> list[Sample]:
    f = DecodeFilter(CFG)
    for s in samples:
        assert f(s) is None
    return samples


def shapes(n_t2i: int, n_edit: int, size: int = 32) -> list[Sample]:
    cfg = load_config("ci", [f"shapes.n_t2i={n_t2i}", f"shapes.n_edit={n_edit}", f"shapes.image_size={size}"])
    return decoded(list(ShapesWorldSource(cfg.shapes)))


def test_shapes_source_matches_generate(tmp_path: Path) -> None:
    from unipic.data.generate import build_dataset
    from unipic.data.shards import iter_dataset

    cfg = load_config("ci", ["shapes.n_t2i=5", "shapes.n_edit=5"])
    build_dataset(cfg.shapes, tmp_path)
    written = {r.key: r for r in iter_dataset(tmp_path)}
    streamed = list(ShapesWorldSource(cfg.shapes))
    assert sorted(s.sample_id for s in streamed) == sorted(written)
    for s in streamed:
        rec = written[s.sample_id]
        assert (s.image, s.target) == ((rec.files["png"], None) if s.kind == "t2i"
                                       else (rec.files["src.png"], rec.files["tgt.png"]))
        assert s.meta == rec.json()


def test_detector_agrees_with_clean_renders_and_not_with_swapped_specs() -> None:
    samples = shapes(12, 8)
    scorer = ShapesDetectorScorer()
    scores = [scorer.score(s) for s in samples]
    assert all(v is not None and v > 0.99 for v in scores)
    t2i = [s for s in samples if s.kind == "t2i"]
    swapped = [Sample(a.sample_id, "t2i", a.task, b.text, a.image, meta=b.meta, pixels=a.pixels)
               for a, b in zip(t2i, t2i[1:] + t2i[:1]) if a.text != b.text]
    low = [scorer.score(s) for s in swapped]
    assert sum(v < 0.5 for v in low) >= 0.8 * len(low)
    assert scorer.score(Sample("x", "t2i", "caption", "a cat", b"", pixels=samples[0].pixels)) is None


def test_quality_filter_rejects_disagreeing_samples_with_the_detector() -> None:
    cfg = CurationConfig(thresholds={"min_agreement": 0.5, "min_exposure": None, "max_exposure": None})
    samples = shapes(6, 0)
    a, b = samples[0], next(s for s in samples if s.meta["spec"] != samples[0].meta["spec"])
    liar = Sample("liar", "t2i", a.task, b.text, a.image, meta=b.meta, pixels=a.pixels)
    f = QualityFilter(cfg, ShapesDetectorScorer())
    assert f(samples[1]) is None and samples[1].signals["agreement"] > 0.99
    assert f(liar) == "quality:disagreement"


def _tiny_clip(path: Path) -> Path:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_syms = list(bytes_to_unicode().values())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for sym in byte_syms:
        vocab.setdefault(sym, len(vocab))
    for sym in byte_syms:
        vocab.setdefault(sym + "</w>", len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    cfg = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "eos_token_id": 1, "bos_token_id": 0,
                     "pad_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16,
    )
    import torch

    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow  # torch + transformers import: ~15 s on 2 shared cores
def test_clip_scorer_loads_a_saved_model_and_scores_in_unit_range(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    model_dir = _tiny_clip(tmp_path / "clip")
    scorer = build_scorer(ScorerConfig(kind="clip", clip_path=str(model_dir)))
    assert isinstance(scorer, ClipScorer)
    samples = shapes(4, 1)
    vals = [scorer.score(s) for s in samples if s.kind == "t2i"]
    assert all(v is not None and 0.0 <= v <= 1.0 and math.isfinite(v) for v in vals)
    assert vals == [scorer.score(s) for s in samples if s.kind == "t2i"]  # deterministic
    assert len(set(np.round(vals, 6))) > 1  # depends on the input
    assert scorer.score(next(s for s in samples if s.kind == "edit")) is None
    f = QualityFilter(CurationConfig(thresholds={"min_agreement": 1.0, "min_exposure": None, "max_exposure": None}),
                      scorer)
    assert f(samples[0]) == "quality:disagreement"  # sigmoid never reaches 1: same interface, same rejection


@pytest.mark.slow  # torch + transformers import
def test_clip_scores_a_batch_as_it_scores_one_sample_at_a_time(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    scorer = build_scorer(ScorerConfig(kind="clip", clip_path=str(_tiny_clip(tmp_path / "clip"))))
    samples = shapes(6, 2)
    samples[1] = Sample("nan", "t2i", "x", float("nan"), b"", pixels=samples[1].pixels)
    one = [scorer.score(s) for s in samples]
    many = scorer.score_batch(samples)
    assert [v is None for v in many] == [v is None for v in one] and sum(v is None for v in one) == 3
    assert all(abs(a - b) < 1e-5 for a, b in zip(many, one, strict=True) if a is not None)


def test_detector_scores_a_batch_exactly_as_one_sample_at_a_time() -> None:
    samples = shapes(24, 12)
    samples[3] = Sample("nospec", "t2i", "x", "a red circle", b"", pixels=samples[3].pixels)
    scorer = ShapesDetectorScorer()
    assert scorer.score_batch(samples) == [scorer.score(s) for s in samples]


def test_t2i_agreement_is_the_full_t2i_score() -> None:
    """The lean agreement must be `score_t2i_detection(...).score` exactly, on matching specs, on other
    samples' specs (wrong counts, colours, shapes, relations) and on noisy, blotched renders."""
    from unipic.config.data import ShapesConfig
    from unipic.data.shapes import ShapesDetector, make_t2i_sample, render
    from unipic.data.shapes.score import score_t2i_detection

    cfg, rng = ShapesConfig(image_size=48), np.random.default_rng(0)
    made = [make_t2i_sample(cfg, i) for i in range(240)]
    imgs = np.stack([render(m.scene) for m in made]).astype(np.float32)
    imgs[::3] += rng.normal(0, 30, imgs[::3].shape)
    imgs[1::4, 10:20, 10:20] = rng.integers(0, 256, 3)
    dets = ShapesDetector().detect_batch(np.clip(np.rint(imgs), 0, 255).astype(np.uint8))
    specs = [m.spec.model_dump() for m in made]
    pairs = [(d, s) for d, s in zip(dets, specs, strict=True)] + list(zip(dets, specs[7:] + specs[:7], strict=True))
    got = [t2i_agreement(d, s) for d, s in pairs]
    assert got == [score_t2i_detection(d, s).score for d, s in pairs]
    assert len(set(got)) >= 5 and {s["task"] for s in specs} >= {"position", "counting", "color_attr"}


def test_build_scorer_validates() -> None:
    assert isinstance(build_scorer(ScorerConfig(kind="none")), NoScorer)
    with pytest.raises(ConfigError, match="clip_path"):
        build_scorer(ScorerConfig(kind="clip"))


def _variants(spec: dict, i: int) -> list[dict]:
    """Specs the array shortcut must not get wrong: colour-free requests, a relation whose slots several
    objects can fill, a relation on a repeated request, unknown names, a broken spec."""
    objs = spec["objects"]
    out = [{**spec, "objects": [{**o, "color": None} for o in objs]}]
    if spec.get("relation") is not None and len(objs) == 2:
        out.append({**spec, "objects": [objs[0], {**objs[0]}]})
        out.append({**spec, "objects": [{**objs[0], "count": 2}, objs[1]]})
        out.append({**spec, "relation": {**spec["relation"], "subject": 5}})
    out.append({**spec, "objects": objs + [{"shape": "hexagon", "color": None, "count": 1}]})
    out.append({**spec, "objects": [{**objs[0], "color": "mauve"}] + objs[1:]})
    out.append({**spec, "objects": [{**o, "count": 0} for o in objs]})
    if i % 17 == 0:
        out.append({k: v for k, v in spec.items() if k != "caption"})
    return out


def test_array_agreement_equals_the_per_image_score_on_every_kind_of_mismatch() -> None:
    """`batch_agreements` on the stacked detector's arrays is `t2i_agreement(detect(image), spec)` exactly:
    on matching specs (the shortcut), other samples' specs, and every variant above, on clean, noisy and
    blotched renders, for any subset of a stack's rows; one spec cache across all (a caption reused with a
    different spec must not hit)."""
    from unipic.config.data import ShapesConfig
    from unipic.data.curation.agreement import SpecCache, batch_agreements
    from unipic.data.curation.scorers import _guarded
    from unipic.data.shapes import ShapesDetector, make_t2i_sample, render
    from unipic.data.shapes.detect_stacked import segment_stack

    cfg, rng, det = ShapesConfig(image_size=48), np.random.default_rng(2), ShapesDetector()
    made = [make_t2i_sample(cfg, i) for i in range(240)]
    imgs = np.stack([render(m.scene) for m in made]).astype(np.float32)
    imgs[::3] += rng.normal(0, 30, imgs[::3].shape)
    imgs[1::4, 10:20, 10:20] = rng.integers(0, 256, 3)
    imgs = np.clip(np.rint(imgs), 0, 255).astype(np.uint8)
    dets = [det.detect(img) for img in imgs]
    specs = [m.spec.model_dump() for m in made]
    pairs = list(enumerate(specs)) + list(enumerate(specs[7:] + specs[:7]))
    pairs += [(i, v) for i, s in enumerate(specs) for v in _variants(s, i)]
    order = rng.permutation(len(pairs))
    pairs = [pairs[k] for k in order]
    cache = SpecCache()
    got: list[float | None] = []
    for a in range(0, len(pairs), 64):
        chunk = pairs[a:a + 64]
        objs = segment_stack(imgs, np.array([i for i, _ in chunk]), det.min_area(48))
        got += batch_agreements(objs, [s for _, s in chunk], cache)
    want = [_guarded(lambda: t2i_agreement(dets[i], s)) for i, s in pairs]  # noqa: B023
    assert got == want
    assert sum(v is None for v in want) >= 10 and len({v for v in want if v is not None}) >= 8
    assert sum(v == 1.0 for v in want) >= 150


def test_detector_scores_stacked_batches_exactly_as_one_sample_at_a_time() -> None:
    """The curation path: the decode filter's batch stacks (T2I and edits mixed), scored per stack."""
    cfg = load_config("ci", ["shapes.n_t2i=40", "shapes.n_edit=12", "shapes.image_size=48"])
    samples = list(ShapesWorldSource(cfg.shapes))
    assert DecodeFilter(CFG).process_batch(samples) == [None] * len(samples)
    assert all("image" in s.slots for s in samples)
    scorer = ShapesDetectorScorer()
    batch = scorer.score_batch(samples[::-1])
    assert batch == [scorer.score(s) for s in samples[::-1]]
    assert sum(v == 1.0 for v in batch) >= 40


def test_spec_cache_keeps_every_spec_of_a_reused_caption(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caption reused by different specs (ShapesWorld: two objects under `two_object` and `color_attr`)
    validates each spec once, even when they alternate, and each lookup returns its own spec's parse."""
    from unipic.data.curation import agreement

    calls: list[dict] = []
    real = agreement.parse_spec

    def counting(spec: dict) -> agreement.ParsedSpec:
        calls.append(spec)
        return real(spec)

    monkeypatch.setattr(agreement, "parse_spec", counting)
    objects = [{"shape": "triangle", "color": "green", "count": 1}, {"shape": "square", "color": "red", "count": 1}]
    a = {"task": "two_object", "caption": "a green triangle and a red square", "objects": objects, "relation": None}
    b = {**a, "task": "color_attr"}
    cache = agreement.SpecCache()
    for _ in range(5):
        assert cache.get(a).spec.task == "two_object"
        assert cache.get(b).spec.task == "color_attr"
    assert len(calls) == 2
    small = agreement.SpecCache(max_entries=1)
    small.get(a), small.get(b), small.get(a)
    assert len(calls) == 5  # past max_entries the cache starts over
