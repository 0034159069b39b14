"""Local-runner test: the pretrain component under kfp.local (SubprocessRunner, no venv), output to a folder."""

import json

import pytest

from components.pretrain.component import pretrain_kontext


@pytest.mark.slow
def test_pretrain_under_kfp_local(tiny_training_inputs, kfp_local, tmp_path):
    base, data = tiny_training_inputs
    out = tmp_path / "model"
    task = pretrain_kontext(preset="ci", overrides=["pretrain.steps=2", "pretrain.warmup_steps=0",
                                                    "pretrain.batch_size=4", "pretrain.sample_steps=1",
                                                    "pretrain.sample_edits=0", "pretrain.sample_prompts=[]"],
                            base_model_uri=str(base), dataset_uri=str(data), dataset_rev="", out_uri=str(out))
    assert task.outputs["Output"] == str(out)
    assert (out / "model_index.json").is_file()
    lineage = json.loads((out / "unipic_lineage.json").read_text())
    assert lineage["stage"] == "pretrain" and lineage["steps"] == 2
    assert task.outputs["model"].metadata["uri"] == str(out)
    assert task.outputs["metrics"].metadata["steps"] == 2.0
