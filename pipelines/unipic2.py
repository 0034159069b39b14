"""The UniPic 2.0 pipeline: one KFP v2 DAG for both scales.

    prerequisites ─▶ generate ShapesWorld ─▶ curate (GX gate, Feast, DVC) ─┐
                     base model (SD3.5-M / stand-in) ───────────────────────┴▶ pretrain SD3.5M-Kontext
        ─▶ [PDTR] RL stage 1: editing ─▶ RL stage 2: text-to-image ─▶ MetaQuery stage 1 (align) ─▶ stage 2
        ─▶ evaluate ─▶ gate ─▶ (promote) deploy                exit handler: run report

Every task receives the same `preset` and `overrides`, so a run is reproducible from its parameters; every
artifact carries lineage in its metadata (dataset version, config hash, parent model, git commit). Defaults
follow the paper (notes/unipic2.md) through the presets in configs/. Cluster settings (GPUs, placement, the S3
Secret, retries, a workspace volume) come from the `cluster` config section at compile time; kfp.local ignores
them.
"""

from kfp import dsl

from components.base_model.component import resolve_base_model
from components.curate.component import curate_dataset
from components.deploy.component import deploy_model
from components.evaluate.component import evaluate_model
from components.gate.component import gate_model
from components.generate.component import generate_shapes
from components.metaquery.component import train_metaquery
from components.passthrough.component import dataset_version, skip_stage
from components.prerequisites.component import check_prerequisites
from components.pretrain.component import pretrain_kontext
from components.rl_edit.component import rl_edit as rl_edit_stage
from components.rl_t2i.component import rl_t2i as rl_t2i_stage
from components.run_report.component import write_run_report
from pipelines.cluster import configure_task
from unipic.config.cluster import ClusterConfig


def build_pipeline(cluster: ClusterConfig | None = None, *, workspace: bool = True):
    """`workspace`: a run-scoped PVC for large intermediates (cluster only: kfp.local 2.17 stops the DAG
    after its first task when a workspace is configured)."""
    cluster = cluster or ClusterConfig()
    config = dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size=cluster.workspace_size)) if workspace else None

    def switched(enabled, stage: str, make_tasks, fallback_uri):
        """Run `make_tasks()` (returns the last task) when `enabled`, else hand `fallback_uri` on. Returns the
        stage's output URI either way, so the DAG keeps one shape for the Table 4 ablations."""
        with dsl.If(enabled == True, name=f"{stage}-on"):  # noqa: E712 - KFP condition on a pipeline channel
            task = make_tasks()
        with dsl.Else(name=f"{stage}-off"):
            skipped = configure_task(skip_stage(uri=fallback_uri, stage=stage), cluster.light, cluster)
        return dsl.OneOf(task.outputs["Output"], skipped.output)

    @dsl.pipeline(
        name="unipic2",
        description="Skywork UniPic 2.0: curate, pre-train SD3.5M-Kontext, PDTR (Flow-GRPO), MetaQuery, "
        "evaluate, gate, deploy.",
        pipeline_config=config,
    )
    def unipic2(
        preset: str = "ci",
        overrides: list = [],  # noqa: B006 - KFP declares list parameters by default value
        source_uri: str = "",
        base_model_uri: str = "",
        rl_edit: bool = True,
        rl_t2i: bool = True,
        metaquery: bool = True,
        deployed_results_uri: str = "",
        deploy_mode: str = "local",
    ):
        """UniPic 2.0 end to end.

        Args:
            preset: config preset (ci | smoke | base) or a YAML path baked into the image.
            overrides: `key.path=value` config overrides applied in every task.
            source_uri: a published dataset to curate; "" generates ShapesWorld from the preset.
            base_model_uri: a published SD3.5-M Kontext folder; "" bootstraps the preset's stand-in.
            rl_edit: PDTR stage 1, Flow-GRPO on editing (paper §3.3; Table 4 ablation switch).
            rl_t2i: PDTR stage 2, Flow-GRPO on text-to-image (paper §3.3).
            metaquery: MetaQuery stages 1-2 on top of the Kontext model (paper §3.1, §4.1).
            deployed_results_uri: results.json of the model now serving, for the gate's regression check.
            deploy_mode: "local" (model server on 127.0.0.1) or "cluster" (KServe InferenceService canary).
        """
        report = write_run_report(preset=preset, overrides=overrides, pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
                                  job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        report.set_caching_options(False)  # placeholders are not part of the cache key: never reuse a report
        configure_task(report, cluster.light, cluster, retry=False)
        with dsl.ExitHandler(report, name="unipic2-stages"):
            prereq = check_prerequisites(preset=preset, overrides=overrides,
                                         inputs={"source": source_uri, "base_model": base_model_uri})
            prereq.set_caching_options(False)
            configure_task(prereq, cluster.light, cluster, retry=False)

            gen = generate_shapes(preset=preset, overrides=overrides, kind="both", out_uri=source_uri)
            configure_task(gen.after(prereq), cluster.curate, cluster)
            cur = curate_dataset(preset=preset, overrides=overrides, sources=[gen.outputs["Output"]], out_uri="",
                                 version=True)
            configure_task(cur, cluster.curate, cluster)
            rev = configure_task(dataset_version(dataset=cur.outputs["dataset"]), cluster.light, cluster)
            dataset_rev = rev.output
            base = resolve_base_model(preset=preset, overrides=overrides, base_model_uri=base_model_uri)
            configure_task(base.after(prereq), cluster.light, cluster)

            pre = pretrain_kontext(preset=preset, overrides=overrides, base_model_uri=base.outputs["Output"],
                                   dataset_uri=cur.outputs["Output"], dataset_rev=dataset_rev, out_uri="")
            configure_task(pre, cluster.pretrain, cluster)
            data = dict(preset=preset, overrides=overrides, dataset_uri=cur.outputs["Output"],
                        dataset_rev=dataset_rev)

            # PDTR (paper §3.3): editing first, then text-to-image, each starting from the previous model.
            after_edit = switched(rl_edit, "rl-edit", lambda: configure_task(
                rl_edit_stage(base_model_uri=pre.outputs["Output"], eval_dataset_uri="", out_uri="", **data),
                cluster.rl, cluster), pre.outputs["Output"])
            kontext = switched(rl_t2i, "rl-t2i", lambda: configure_task(
                rl_t2i_stage(base_model_uri=after_edit, eval_dataset_uri="", out_uri="", **data),
                cluster.rl, cluster), after_edit)

            def metaquery_stages():
                mq1 = train_metaquery(init_from=kontext, stage=1, image_to="", out_uri="", **data)
                configure_task(mq1, cluster.metaquery, cluster)
                mq2 = train_metaquery(init_from=mq1.outputs["Output"], stage=2, image_to="", out_uri="", **data)
                return configure_task(mq2, cluster.metaquery, cluster)

            final = switched(metaquery, "metaquery", metaquery_stages, kontext)

            ev = evaluate_model(preset=preset, overrides=overrides, model_uri=final, benchmarks=[],
                                previous_results_uri=deployed_results_uri)
            configure_task(ev, cluster.evaluate, cluster)
            gate = gate_model(preset=preset, overrides=overrides, candidate=ev.outputs["results"],
                              deployed_results_uri=deployed_results_uri)
            configure_task(gate, cluster.light, cluster)
            with dsl.If(gate.outputs["Output"] == "promote", name="promoted"):
                dep = deploy_model(preset=preset, overrides=overrides, model_uri=final, mode=deploy_mode,
                                   gate_decision=gate.outputs["Output"])
                dep.set_caching_options(False)  # a deployment is an effect, not a reusable result
                configure_task(dep, cluster.light, cluster, retry=False)

    return unipic2


unipic2 = build_pipeline()
local_unipic2 = build_pipeline(workspace=False)
