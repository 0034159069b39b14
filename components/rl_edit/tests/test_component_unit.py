"""Unit test: call the rl_edit component's python function with a tiny bootstrapped model and a generated
ShapesWorld dataset, writing the merged model to a local folder."""

import json

from components.rl_edit.component import rl_edit

FAST = ["rl.edit.steps=1", "rl.edit.threads=1", "rl.edit.eval_prompts=2", "rl.grpo.num_steps=2",
        "rl.grpo.eval_num_steps=2", "rl.grpo.group_size=2", "rl.grpo.rollout_batch_size=4", "rl.edit.fused_adamw=false"]


def test_rl_edit_component_writes_a_merged_model_scores_and_report(tiny_training_inputs, call_component, no_cluster,
                                                                   tmp_path, monkeypatch):
    from unipic.pipelines.kontext import UniPicKontextPipeline

    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    base, data = tiny_training_inputs
    out_dir = tmp_path / "merged"
    uri, out = call_component(rl_edit, tmp_path, preset="ci", overrides=FAST, base_model_uri=str(base),
                              dataset_uri=str(data), dataset_rev="v1", eval_dataset_uri="", out_uri=str(out_dir))
    assert uri == str(out_dir)
    lineage = json.loads((out_dir / "unipic_lineage.json").read_text())
    assert lineage["stage"] == "rl-edit" and lineage["parent_model"] == str(base) and lineage["rounds"] == 1
    assert not any("lora" in p.name for p in out_dir.rglob("*"))
    pipe = UniPicKontextPipeline.from_pretrained(out_dir)
    assert not any("lora" in k for k in pipe.transformer.state_dict())
    assert out.model.metadata["uri"] == uri and out.model.metadata["dataset_rev"] == "v1"
    assert out.record["before"].keys() == {"t2i", "edit"} and out.values["rounds"] == 1.0
    assert {"before_edit_score", "after_edit_score", "before_t2i_accuracy", "after_t2i_accuracy"} <= set(out.values)
    assert "data:image/png;base64," in out.report
