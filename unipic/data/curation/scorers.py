"""Text-image agreement scorers behind one interface.

In ShapesWorld the detector reads the image back into objects and the score is its agreement with the
sample's ground-truth spec (the caption's meaning). At cluster scale the same slot holds a CLIP scorer.
A scorer returns a value in [0, 1], or None when it cannot judge the sample (e.g. CLIP on an edit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from unipic.config.curation import ScorerConfig
from unipic.config.store import StoreConfig
from unipic.data.curation.sample import Sample
from unipic.errors import ConfigError

if TYPE_CHECKING:
    from unipic.data.shapes.detect import Detection


class AgreementScorer(Protocol):
    """`score` judges one sample. A scorer may also define `score_batch(samples) -> list[float | None]`
    (equal to scoring one by one) to judge a batch at once, as a CLIP scorer on an accelerator would."""

    name: str

    def score(self, sample: Sample) -> float | None: ...


def score_many(scorer: AgreementScorer, samples: list[Sample]) -> list[float | None]:
    """Scores for a batch: the scorer's own `score_batch` when it has one, else one `score` per sample."""
    batch = getattr(scorer, "score_batch", None)
    if batch is not None:
        return list(batch(samples))
    return [scorer.score(s) for s in samples]


class NoScorer:
    name = "none"

    def score(self, sample: Sample) -> float | None:
        return None

    def score_batch(self, samples: list[Sample]) -> list[float | None]:
        return [None] * len(samples)


class ClipScorer:
    """CLIP cosine similarity of image and caption, squashed to [0, 1] with a sigmoid.

    Loads any `CLIPModel` folder (real weights at cluster scale, a tiny random one in tests).
    Preprocessing is done with PIL + numpy (resize, centre, CLIP mean/std) to avoid torchvision.
    """

    name = "clip"
    _MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    _STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

    def __init__(self, model_dir: str | Path, scale: float = 0.05, bias: float = 0.2) -> None:
        import torch
        from transformers import AutoTokenizer, CLIPModel

        self._torch = torch
        self.model = CLIPModel.from_pretrained(str(model_dir)).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.size = int(self.model.config.vision_config.image_size)
        self.scale = scale
        self.bias = bias

    def _pixels(self, pixels: np.ndarray) -> object:
        from PIL import Image

        im = Image.fromarray(pixels).convert("RGB").resize((self.size, self.size), Image.Resampling.BICUBIC)
        arr = (np.asarray(im, dtype=np.float32) / 255.0 - self._MEAN) / self._STD
        return self._torch.from_numpy(arr.transpose(2, 0, 1)[None].copy())

    def score(self, sample: Sample) -> float | None:
        return self.score_batch([sample])[0]

    def score_batch(self, samples: list[Sample]) -> list[float | None]:
        """One forward pass of the image and text towers for the whole batch (captions padded to the longest).
        Equal to scoring one at a time up to float rounding (tests: within 1e-5)."""
        keep = [i for i, s in enumerate(samples)
                if not s.is_edit and s.pixels is not None and isinstance(s.text, str)]
        out: list[float | None] = [None] * len(samples)
        if not keep:
            return out
        torch = self._torch
        with torch.no_grad():
            tok = self.tokenizer([samples[i].text for i in keep], padding=True, truncation=True,
                                 return_tensors="pt")
            pixels = torch.cat([self._pixels(samples[i].pixels) for i in keep])  # type: ignore[misc]
            img = self.model.get_image_features(pixel_values=pixels)
            txt = self.model.get_text_features(input_ids=tok["input_ids"],
                                               attention_mask=tok["attention_mask"])
            img = getattr(img, "pooler_output", img)
            txt = getattr(txt, "pooler_output", txt)
            cos = torch.nn.functional.cosine_similarity(img, txt).tolist()
        for i, c in zip(keep, cos, strict=True):
            out[i] = 1.0 / (1.0 + math.exp(-(c - self.bias) / self.scale))
        return out


class ShapesDetectorScorer:
    """ShapesWorld: the detector's agreement with the sample's ground truth (`spec` in its JSON).

    T2I: `score_t2i(image, spec).score`; edit: `score_edit(source, target, spec).overall`. Samples without a
    ShapesWorld spec (a user's folder) get None: the detector has nothing to check them against.
    The detector reads the shared analysis view (long side <= 128 px, box-reduced): on 180 renders at 256 and
    512 px every verdict matched the full-resolution one, at 1/3 and 1/11 of the cost.
    """

    name = "shapes_detector"

    def __init__(self) -> None:
        from unipic.data.shapes import ShapesDetector

        self.detector = ShapesDetector()

    def score(self, sample: Sample) -> float | None:
        from unipic.data.shapes.score import score_edit

        spec = self._spec(sample)
        if spec is None:
            return None
        try:
            if sample.is_edit:
                src, tgt = sample.analysis("image"), sample.analysis("target")
                return float(score_edit([src], [tgt], [spec], self.detector)[0].overall)
            return t2i_agreement(self.detector.detect(sample.analysis("image")), spec)
        except (ValueError, KeyError, TypeError):
            return None

    def score_batch(self, samples: list[Sample]) -> list[float | None]:
        """`score` for each sample, with the T2I images, edit sources and edit targets each detected as one
        batch (`ShapesDetector.detect_batch`: identical detections, a fraction of the per-image cost)."""
        from unipic.data.shapes.score import score_edit_detections

        out: list[float | None] = [None] * len(samples)
        specs = [self._spec(s) for s in samples]
        t2i = [i for i, s in enumerate(samples) if specs[i] is not None and not s.is_edit]
        edits = [i for i, s in enumerate(samples) if specs[i] is not None and s.is_edit]
        dets = self._detect([samples[i].analysis("image") for i in t2i + edits])
        targets = self._detect([samples[i].analysis("target") for i in edits])
        if dets is None or targets is None:
            return [self.score(s) for s in samples]
        for i, det in zip(t2i, dets[:len(t2i)], strict=True):
            out[i] = _guarded(lambda: t2i_agreement(det, specs[i]))  # noqa: B023
        for i, src, tgt in zip(edits, dets[len(t2i):], targets, strict=True):
            out[i] = _guarded(lambda: score_edit_detections(src, tgt, specs[i]).overall)  # noqa: B023
        return out

    def _spec(self, sample: Sample) -> dict | None:
        """The sample's ShapesWorld spec when it can be judged (decoded, and both images for an edit)."""
        spec = sample.meta.get("spec") if isinstance(sample.meta, dict) else None
        if not isinstance(spec, dict) or sample.pixels is None:
            return None
        if sample.is_edit and sample.target_pixels is None:
            return None
        return spec

    def _detect(self, views: list[np.ndarray]) -> list[Detection] | None:
        """Detections of a batch of views, or None when one of them cannot be read (then score one by one)."""
        try:
            return self.detector.detect_batch(views)
        except (ValueError, KeyError, TypeError):
            return None


def t2i_agreement(det: Detection, spec: dict) -> float:
    """`score_t2i_detection(det, spec).score` alone: the same slots, pairing, assignment and relation check in
    the same order, so the same float, without the diagnostics curation does not keep (reason strings, counters,
    one dict per object: two thirds of its cost). tests/unit/test_curation_scorers.py holds them equal."""
    from scipy.optimize import linear_sum_assignment

    from unipic.data.shapes.t2i import T2ISpec
    from unipic.data.shapes.world import relations

    t2i = T2ISpec.model_validate(spec)
    slots = [(i, r.shape, r.color) for i, r in enumerate(t2i.objects) for _ in range(r.count)]
    objs = det.objects
    n_req, n_det = len(slots), len(objs)
    pair = np.array([[(1.0 if o.shape == shape else 0.0) if color is None
                      else 0.5 * (o.shape == shape) + 0.5 * (o.color == color) for o in objs]
                     for _, shape, color in slots], dtype=np.float64).reshape(n_req, n_det)
    rows, cols = linear_sum_assignment(-pair) if n_req and n_det else (np.array([], int), np.array([], int))
    got = pair[rows, cols]
    object_score = 2.0 * float(got.sum()) / (n_req + n_det) if (n_req + n_det) else 1.0
    exact = n_req == n_det and bool(np.all(got == 1.0)) and len(rows) == n_req
    if t2i.relation is None:
        return 1.0 if exact else float(object_score)
    assigned = {slots[a][0]: objs[b] for a, b in zip(rows, cols, strict=True) if pair[a, b] == 1.0}
    subj, ref = assigned.get(t2i.relation.subject), assigned.get(t2i.relation.reference)
    relation_ok = bool(subj and ref and t2i.relation.relation in relations(subj.bbox, ref.bbox))
    return 1.0 if exact and relation_ok else float(0.5 * object_score + 0.5 * float(relation_ok))


def _guarded(fn: Callable[[], float]) -> float | None:
    try:
        return float(fn())
    except (ValueError, KeyError, TypeError):
        return None


def build_scorer(cfg: ScorerConfig, store_cfg: StoreConfig | None = None) -> AgreementScorer:
    """The configured scorer; a CLIP model on s3:// is fetched (hash-verified, cached) first."""
    if cfg.kind == "none":
        return NoScorer()
    if cfg.kind == "clip":
        if not cfg.clip_path:
            raise ConfigError("curation.scorer.kind=clip needs curation.scorer.clip_path (a CLIPModel dir)")
        path: str | Path = cfg.clip_path
        if cfg.clip_path.startswith("s3://"):
            from unipic.storage import materialize

            path = materialize(cfg.clip_path, store_cfg)
        return ClipScorer(path, cfg.clip_logit_scale, cfg.clip_bias)
    return ShapesDetectorScorer()
