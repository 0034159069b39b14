"""KFP component: forward a URI unchanged (the Else branch of a switched-off stage)."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def skip_stage(uri: str, stage: str) -> str:
    """A stage switched off by a pipeline parameter hands its input on, so the DAG keeps one shape."""
    print(f"stage {stage} is switched off; passing {uri} on")
    return uri


@dsl.component(base_image=CURATE, install_kfp_package=False)
def dataset_version(dataset: dsl.Input[dsl.Dataset]) -> str:
    """The DVC revision a curated dataset was versioned at (from its artifact metadata), for lineage."""
    return str(dataset.metadata.get("dataset_rev", ""))
