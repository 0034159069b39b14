"""The UniPic 2.0 pipeline: one KFP v2 DAG for both scales.

    prerequisites ─▶ generate ShapesWorld ─▶ curate ─▶ pretrain ─▶ RL edit ─▶ RL T2I ─▶ MetaQuery
                 ─▶ evaluate ─▶ gate ─▶ (promote) deploy                      exit handler: run report

Every task receives the same `preset` and `overrides`, so a run is reproducible from its parameters;
every artifact carries lineage in its metadata. Defaults follow the paper (notes/unipic2.md) through the
presets in configs/. Cluster settings (GPUs, placement, the S3 Secret, retries) come from the `cluster`
config section at compile time (`build_pipeline`); kfp.local ignores them.
"""

from kfp import dsl

from components.generate.component import generate_shapes
from components.prerequisites.component import check_prerequisites
from components.run_report.component import write_run_report
from pipelines.cluster import configure_task
from unipic.config.cluster import ClusterConfig


def build_pipeline(cluster: ClusterConfig | None = None, *, workspace: bool = True):
    """`workspace`: a run-scoped PVC for large intermediates (cluster only: kfp.local 2.17 stops the DAG
    after its first task when a workspace is configured)."""
    cluster = cluster or ClusterConfig()
    config = dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size=cluster.workspace_size)) if workspace else None

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
    ):
        """`source_uri`: a published dataset to curate; empty = generate ShapesWorld from the preset."""
        report = write_run_report(preset=preset, overrides=overrides, pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
                                  job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
        report.set_caching_options(False)  # placeholders are not part of the cache key: never reuse a report
        configure_task(report, cluster.light, cluster, retry=False)
        with dsl.ExitHandler(report, name="unipic2-stages"):
            prereq = check_prerequisites(preset=preset, overrides=overrides, inputs={"source": source_uri})
            prereq.set_caching_options(False)
            configure_task(prereq, cluster.light, cluster, retry=False)
            gen = generate_shapes(preset=preset, overrides=overrides, kind="both", out_uri=source_uri)
            configure_task(gen.after(prereq), cluster.curate, cluster)

    return unipic2


unipic2 = build_pipeline()
local_unipic2 = build_pipeline(workspace=False)
