"""VIEScore prompts (Ku et al., 2024), as GEdit-Bench uses them: semantic consistency (SC) and perceptual
quality (PQ), each on a 0-10 scale, answered as JSON `{"score": [...], "reasoning": "..."}`.

The structure follows VIEScore's `vie_prompts.py` (a context that fixes the output format, a rule that says
what the images are, a scale that says what each number means); the wording here is ours. Scoring:
SC = min(SC scores), PQ = min(PQ scores), O = sqrt(SC * PQ) (`viescore/__init__.py`).

The prompts carry stable markers ("Editing instruction:", "Text prompt:") so that a judge, including the
local ShapesWorld stand-in, can read the instruction back from the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONTEXT = """You are a professional digital artist. You will evaluate how effective AI-generated images are, \
following the rules below. All input images are AI-generated; any people in them are AI-generated too.

Answer ONLY with a JSON object in exactly this form (keep the reasoning short):
{
"score" : [...],
"reasoning" : "..."
}"""

RULE_TWO_IMAGE_EDIT = """RULES:

Two images are provided: the first is the original AI-generated image, the second is an edited version of it.
The goal is to judge how well the editing instruction was carried out in the second image.
The two images may look identical when the edit failed."""

RULE_ONE_IMAGE_GEN = """RULES:

One AI-generated image is provided, generated from the text prompt below.
The goal is to judge how well the image follows the text prompt."""

RULE_PQ = """RULES:

The image is AI-generated. The goal is to judge its perceptual quality only, not whether it follows any text."""

SCALE_EDIT_SC = """From a scale 0 to 10:
The first score (0 to 10) rates the success of the edit: 0 means the edited image does not follow the \
editing instruction at all, 10 means it follows the instruction perfectly.
The second score (0 to 10) rates over-editing: 0 means the edited image is completely different from the \
original, 10 means it is a minimal yet effective edit of the original.
Put both in a list: score = [score1, score2], score1 for edit success, score2 for over-editing.

Editing instruction: {instruction}"""

SCALE_T2I_SC = """From a scale 0 to 10:
One score (0 to 10) rates how well the image follows the prompt: 0 means it does not follow the prompt at \
all, 10 means it follows the prompt perfectly.
Put it in a list: score = [score].

Text prompt: {prompt}"""

SCALE_PQ = """From a scale 0 to 10:
The first score (0 to 10) rates naturalness: 0 means the image looks unnatural (wrong sense of distance, \
shadow or lighting), 10 means it looks natural.
The second score (0 to 10) rates the absence of artifacts: 0 means heavy distortion, noise, blur or \
watermarks, 10 means no artifacts at all.
Put both in a list: score = [naturalness, artifacts]."""

PROMPT_KINDS = ("edit_sc", "t2i_sc", "pq")
N_SCORES = {"edit_sc": 2, "t2i_sc": 1, "pq": 2}


def edit_sc_prompt(instruction: str) -> str:
    return "\n\n".join([CONTEXT, RULE_TWO_IMAGE_EDIT, SCALE_EDIT_SC.format(instruction=instruction)])


def t2i_sc_prompt(prompt: str) -> str:
    return "\n\n".join([CONTEXT, RULE_ONE_IMAGE_GEN, SCALE_T2I_SC.format(prompt=prompt)])


def pq_prompt() -> str:
    return "\n\n".join([CONTEXT, RULE_PQ, SCALE_PQ])


@dataclass(frozen=True)
class VIEScoreResult:
    """One sample's VIEScore. `None` parts mean the judge's answer for that part was excluded."""

    sc: float | None
    pq: float | None

    @property
    def overall(self) -> float | None:
        if self.sc is None or self.pq is None:
            return None
        return math.sqrt(self.sc * self.pq)


def combine(sc_scores: list[float] | None, pq_scores: list[float] | None) -> VIEScoreResult:
    """SC = min of the SC list, PQ = min of the PQ list (VIEScore's aggregation of sub-scores)."""
    return VIEScoreResult(
        sc=min(sc_scores) if sc_scores else None,
        pq=min(pq_scores) if pq_scores else None,
    )
