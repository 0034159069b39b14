"""ShapesWorld: a synthetic compositional image world with exact ground truth (see README.md here).

scenes and vocabulary (`world`), rendering (`render`), GenEval-style T2I samples (`t2i`), GEdit-style edit
triplets (`edits`), the held-out composition rule (`heldout`), the detector (`detect`) and the scorers that
serve as rewards and benchmark judges (`score`).
"""

from unipic.data.shapes.detect import DetectedObject, Detection, ShapesDetector, detect, detect_batch
from unipic.data.shapes.edits import EditSample, EditSpec, make_edit, make_edit_sample
from unipic.data.shapes.heldout import heldout_pairs
from unipic.data.shapes.render import from_png, render, to_png
from unipic.data.shapes.score import (
    EditScore,
    T2IScore,
    cleanliness,
    score_edit,
    score_t2i,
    summarize_edit,
    summarize_t2i,
)
from unipic.data.shapes.t2i import ObjectRequirement, RelationRequirement, T2ISample, T2ISpec, make_t2i_sample
from unipic.data.shapes.world import (
    BACKGROUNDS,
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    relations,
    side_px,
)

__all__ = [
    "BACKGROUNDS", "COLORS", "RELATIONS", "SHAPES", "SIZES", "DetectedObject", "Detection", "EditSample",
    "EditScore", "EditSpec", "ObjectRequirement", "RelationRequirement", "Scene", "SceneObject", "ShapesDetector",
    "T2ISample", "T2IScore", "T2ISpec", "cleanliness", "detect", "detect_batch", "from_png", "heldout_pairs",
    "make_edit", "make_edit_sample", "make_t2i_sample", "relations", "render", "score_edit", "score_t2i",
    "side_px", "summarize_edit", "summarize_t2i", "to_png",
]
