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
