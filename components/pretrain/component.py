"""KFP component: pre-train UniPic2-SD3.5M-Kontext (joint T2I + editing) and publish the model."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def pretrain_kontext(
    preset: str,
    overrides: list,
    base_model_uri: str,
    dataset_uri: str,
    dataset_rev: str,
    out_uri: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Train the Kontext DiT from `base_model_uri` (bootstrapped or converted SD3.5-M folder, path or s3://) on
    `dataset_uri` (curate_dataset's output); publish the pipeline folder (EMA weights, lineage) to `out_uri`
    (default s3://<models bucket>/pretrain/<config hash>). Returns the model URI; `model` carries it with the
    lineage, `metrics` the run summary, `report` the last sample grid and the loss curve."""
    import base64
    import json
    import tempfile
    from pathlib import Path

    from unipic.config import config_hash, load_config
    from unipic.training.pretrain import run_pretrain

    sets = [str(o) for o in overrides] + [f"pretrain.base_model={base_model_uri}", f"pretrain.dataset={dataset_uri}"]
    if dataset_rev:
        sets.append(f"pretrain.dataset_rev={dataset_rev}")
    cfg = load_config(preset, sets)
    uri = out_uri or f"s3://{cfg.store.buckets.models}/pretrain/{config_hash(cfg.pretrain)}"
    cfg = load_config(preset, sets + [f"pretrain.output={uri}"])
    with tempfile.TemporaryDirectory(prefix="unipic-pretrain-") as work:
        res = run_pretrain(cfg.pretrain, Path(work), store_cfg=cfg.store)
        t = res.train
        model.metadata.update({"uri": res.model, **res.lineage.as_metadata()})
        with open(model.path, "w") as f:
            json.dump({"uri": res.model, "lineage": res.lineage.model_dump()}, f)
        records = [json.loads(x) for x in Path(t.metrics_path).read_text().splitlines() if x]
        final = t.losses.get(t.last_step)
        metrics.log_metric("steps", float(t.last_step))
        if final is not None:
            metrics.log_metric("final_loss", float(final))
        if records:
            last = records[-1]
            for key in ("loss", "img_tok_per_s", "step_time_s", "peak_rss_gb"):
                if last.get(key) is not None:
                    metrics.log_metric(key, float(last[key]))
        lines = ["# Pre-training (UniPic2-SD3.5M-Kontext)", "", f"- model: `{res.model}`",
                 f"- from: `{base_model_uri}`", f"- dataset: `{dataset_uri}` (rev {dataset_rev or '-'})",
                 f"- steps: {t.last_step}, final loss: {final}", f"- config hash: `{res.lineage.config_hash}`", ""]
        for png in t.sample_grids[-1:] + ([t.curve_png] if t.curve_png else []):
            data = base64.b64encode(Path(png).read_bytes()).decode()
            lines.append(f"![{Path(png).name}](data:image/png;base64,{data})")
        with open(report.path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return res.model
