"""Which prompts an RL stage scores before/after: Table 4 needs every stage to score the same ones."""

from __future__ import annotations

import pytest

from unipic.config.rl import RLEditStageConfig, RLStageConfig
from unipic.rl.stages import _eval_conditions


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset

    root = tmp_path_factory.mktemp("rl-eval") / "data"
    generate_dataset(ShapesConfig(n_t2i=48, n_edit=56), root)
    return root


def _tasks(conds) -> set[str]:
    return {c.meta["task"] if "task" in c.meta else c.meta.get("category") for c in conds}


def test_default_scores_own_tasks_and_all_of_the_other_kind(data):
    edit = RLEditStageConfig(tasks=["recolor"], eval_prompts=40)
    assert _tasks(_eval_conditions(data, "edit", edit)) == {"recolor"}
    assert len(_tasks(_eval_conditions(data, "t2i", edit))) > 1
    t2i = RLStageConfig(tasks=["colors"], eval_prompts=40)
    assert _tasks(_eval_conditions(data, "t2i", t2i)) == {"colors"}
    assert len(_tasks(_eval_conditions(data, "edit", t2i))) > 1


def test_shared_eval_tasks_give_both_stages_the_same_prompts(data):
    shared = ["colors", "recolor"]
    edit = RLEditStageConfig(tasks=["recolor"], eval_tasks=shared, eval_prompts=40)
    t2i = RLStageConfig(tasks=["colors"], eval_tasks=shared, eval_prompts=40)
    for kind in ("t2i", "edit"):
        a, b = _eval_conditions(data, kind, edit), _eval_conditions(data, kind, t2i)
        assert a and [c.key for c in a] == [c.key for c in b]
    assert _tasks(_eval_conditions(data, "t2i", t2i)) == {"colors"}
    assert _tasks(_eval_conditions(data, "edit", t2i)) == {"recolor"}
    only_t2i = RLStageConfig(eval_tasks=["colors"])
    assert _eval_conditions(data, "edit", only_t2i) == []


def test_eval_tasks_the_dataset_lacks_fail_naming_them(data):
    from unipic.errors import DataError

    with pytest.raises(DataError, match=r"eval_tasks names tasks \['colours'\]"):
        _eval_conditions(data, "t2i", RLStageConfig(eval_tasks=["colours", "recolor"]))
