"""Strict parsing of judge answers: valid answers parse, everything else is classified, never guessed."""

import pytest

from unipic.judges.parsing import ParseFailure, parse_rubric, parse_viescore
from unipic.judges.viescore import VIEScoreResult, combine


def test_viescore_plain_and_fenced_json():
    assert parse_viescore('{"score": [7, 9], "reasoning": "ok"}', 2) == ([7.0, 9.0], "ok")
    text = '```json\n{\n"score" : [3],\n"reasoning" : "meh"\n}\n```'
    assert parse_viescore(text, 1) == ([3.0], "meh")
    assert parse_viescore('Here you go: {"reasoning": "x", "score": ["8", 6.5]}', 2)[0] == [8.0, 6.5]


@pytest.mark.parametrize("text,kind", [
    ("Sure! I'd say around seven out of ten.", "unparseable"),
    ('{"score": [7, 8', "unparseable"),
    ('{"reasoning": "no score"}', "unparseable"),
    ('{"score": [7], "reasoning": "one score only"}', "unparseable"),
    ('{"score": [7, "high"]}', "unparseable"),
    ('{"score": [7, true]}', "unparseable"),
    ('{"score": [11, 5]}', "out_of_range"),
    ('{"score": [-1, 5]}', "out_of_range"),
    ('{"score": [NaN, 5]}', "out_of_range"),
])
def test_viescore_rejects(text, kind):
    with pytest.raises(ParseFailure) as info:
        parse_viescore(text, 2)
    assert info.value.kind == kind


DIMS = ["Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"]


def test_rubric_parses_named_dimensions_in_any_order():
    text = ("Brief reasoning: the cup is replaced.\nPhysical & Detail Integrity: 3\n"
            "Prompt Compliance: 5\n**Visual Naturalness**: 4")
    scores, why = parse_rubric(text, DIMS)
    assert scores == [5.0, 4.0, 3.0] and why == "the cup is replaced."


@pytest.mark.parametrize("text,kind", [
    ("Prompt Compliance: 5\nVisual Naturalness: 4", "unparseable"),
    ("Prompt Compliance: 6\nVisual Naturalness: 4\nPhysical & Detail Integrity: 3", "out_of_range"),
    ("Prompt Compliance: 4.5\nVisual Naturalness: 4\nPhysical & Detail Integrity: 3", "out_of_range"),
    ("Prompt Compliance: five\nVisual Naturalness: 4\nPhysical & Detail Integrity: 3", "unparseable"),
    ("Prompt Compliance: 5\nPrompt Compliance: 4\nVisual Naturalness: 4\nPhysical & Detail Integrity: 3",
     "unparseable"),
])
def test_rubric_rejects(text, kind):
    with pytest.raises(ParseFailure) as info:
        parse_rubric(text, DIMS)
    assert info.value.kind == kind


def test_viescore_combine_is_min_then_geometric_mean():
    r = combine([8, 4], [9, 1])
    assert (r.sc, r.pq) == (4, 1) and r.overall == pytest.approx(2.0)
    assert VIEScoreResult(sc=None, pq=5).overall is None
