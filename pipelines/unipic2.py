"""The UniPic 2.0 pipeline: one KFP v2 DAG for both scales.

    prerequisites ─▶ generate ShapesWorld ─▶ curate ─▶ pretrain ─▶ RL edit ─▶ RL T2I ─▶ MetaQuery
                 ─▶ evaluate ─▶ gate ─▶ (promote) deploy                      exit handler: run report

Every task receives the same `preset` and `overrides`, so a run is reproducible from its parameters;
every artifact carries lineage in its metadata. Defaults follow the paper (notes/unipic2.md) through the
presets in configs/.
"""

from kfp import dsl

from components.generate.component import generate_shapes
from components.prerequisites.component import check_prerequisites


@dsl.pipeline(
    name="unipic2",
    description="Skywork UniPic 2.0: curate, pre-train SD3.5M-Kontext, PDTR (Flow-GRPO), MetaQuery, evaluate, "
    "gate, deploy.",
)
def unipic2(
    preset: str = "ci",
    overrides: list = [],  # noqa: B006 - KFP pipeline parameters are declared by default value
    source_uri: str = "",
) -> str:
    """`source_uri`: an existing published dataset to curate; empty = generate ShapesWorld from the preset."""
    prereq = check_prerequisites(preset=preset, overrides=overrides, inputs={"source": source_uri})
    prereq.set_caching_options(False)
    gen = generate_shapes(preset=preset, overrides=overrides, kind="both", out_uri=source_uri).after(prereq)
    return gen.outputs["Output"]
