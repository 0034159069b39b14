"""Unit test: call the rl_edit component's python function with a tiny bootstrapped model and a generated
ShapesWorld dataset, writing the merged model to a local folder."""

import json
from types import SimpleNamespace

from components.rl_edit.component import rl_edit

FAST = ["rl.edit.steps=1", "rl.edit.threads=1", "rl.edit.eval_prompts=2", "rl.grpo.num_steps=2",
        "rl.grpo.eval_num_steps=2", "rl.grpo.group_size=2", "rl.grpo.rollout_batch_size=4", "rl.edit.fused_adamw=false"]


class _Metrics(SimpleNamespace):
    def log_metric(self, name, value):
        self.values[name] = value


def test_rl_edit_component_writes_a_merged_model_scores_and_report(tmp_path, monkeypatch):
    from unipic.config import load_config
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.pipelines.kontext import UniPicKontextPipeline

    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    base = bootstrap_base_model(load_config("ci").model, tmp_path / "base")
    data = tmp_path / "data"
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), data)
    model = SimpleNamespace(path=str(tmp_path / "model.json"), metadata={})
    metrics = _Metrics(values={})
    report = SimpleNamespace(path=str(tmp_path / "report.md"))
    out = tmp_path / "merged"
    uri = rl_edit.python_func(preset="ci", overrides=FAST, base_model_uri=str(base), dataset_uri=str(data),
                              dataset_rev="v1", eval_dataset_uri="", out_uri=str(out), model=model,
                              metrics=metrics, report=report)
    assert uri == str(out)
    lineage = json.loads((out / "unipic_lineage.json").read_text())
    assert lineage["stage"] == "rl-edit" and lineage["parent_model"] == str(base) and lineage["rounds"] == 1
    assert not any("lora" in p.name for p in out.rglob("*"))
    pipe = UniPicKontextPipeline.from_pretrained(out)
    assert not any("lora" in k for k in pipe.transformer.state_dict())
    assert model.metadata["uri"] == uri and model.metadata["dataset_rev"] == "v1"
    assert metrics.values["rounds"] == 1.0
    assert {"before_edit_score", "after_edit_score", "before_t2i_accuracy", "after_t2i_accuracy"} <= set(metrics.values)
    assert "data:image/png;base64," in (tmp_path / "report.md").read_text()
