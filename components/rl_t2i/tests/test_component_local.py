"""Local-runner test: the rl_t2i component under kfp.local (SubprocessRunner, no venv), output to a folder."""

import json

import pytest

from components.rl_t2i.component import rl_t2i

FAST = ["rl.t2i.steps=1", "rl.t2i.threads=1", "rl.t2i.eval_prompts=2", "rl.grpo.num_steps=2",
        "rl.grpo.eval_num_steps=2", "rl.grpo.group_size=2", "rl.grpo.rollout_batch_size=4", "rl.t2i.fused_adamw=false"]


@pytest.mark.slow
def test_rl_t2i_under_kfp_local(tiny_training_inputs, kfp_local, tmp_path):
    base, data = tiny_training_inputs
    out = tmp_path / "model"
    task = rl_t2i(preset="ci", overrides=FAST, base_model_uri=str(base), dataset_uri=str(data), dataset_rev="",
                  eval_dataset_uri="", out_uri=str(out))
    assert task.outputs["Output"] == str(out)
    lineage = json.loads((out / "unipic_lineage.json").read_text())
    assert lineage["stage"] == "rl-t2i" and lineage["rounds"] == 1
    assert task.outputs["metrics"].metadata["rounds"] == 1.0
