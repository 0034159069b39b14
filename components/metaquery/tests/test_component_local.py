"""Local-runner test: stage 1 then stage 2 of MetaQuery training under kfp.local (SubprocessRunner, no venv)."""

import pytest
from kfp import dsl

from components.metaquery.component import train_metaquery


@pytest.mark.slow
def test_two_stages_under_kfp_local(store_env, kfp_local, tmp_path, s3_prefix):
    from unipic.config.data import ShapesConfig
    from unipic.config.model import ModelConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.storage import ObjectStore

    store_config = store_env
    kontext = str(bootstrap_base_model(ModelConfig(), tmp_path / "kontext"))
    data = str(tmp_path / "data")
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), data)
    overrides = [
        f"store.endpoint={store_config.endpoint}",
        "metaquery.train.steps=1",
        "metaquery.train.batch_size=2",
        "metaquery.train.sample_steps=1",
    ]

    @dsl.pipeline
    def metaquery_two_stages() -> str:
        s1 = train_metaquery(
            preset="ci",
            overrides=overrides,
            init_from=kontext,
            dataset_uri=data,
            dataset_rev="",
            stage=1,
            image_to="",
            out_uri=f"{s3_prefix}stage1",
        )
        s2 = train_metaquery(
            preset="ci",
            overrides=overrides,
            init_from=s1.outputs["Output"],
            dataset_uri=data,
            dataset_rev="",
            stage=2,
            image_to="",
            out_uri=f"{s3_prefix}stage2",
        )
        return s2.outputs["Output"]

    assert metaquery_two_stages().output == f"{s3_prefix}stage2"
    store = ObjectStore(store_config)
    for stage in ("stage1", "stage2"):
        assert store.read_manifest(f"{s3_prefix}{stage}").total_sha256
