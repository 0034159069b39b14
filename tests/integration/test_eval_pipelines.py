"""The harness drives our real pipelines (Kontext and MetaQuery, tiny random models built in memory) through
the same call: batched prompts, per-image generators, editing with source images. Random models score ~0;
this checks plumbing and determinism, not quality."""

import numpy as np
import pytest
from PIL import Image

from unipic.config import load_config
from unipic.evaluation import evaluate
from unipic.evaluation.benchmarks import make_benchmark
from unipic.evaluation.generation import generate, image_path


@pytest.fixture(scope="module")
def cfg():
    return load_config("ci", ["evaluation.n_per_task=1", "evaluation.generation.images_per_prompt=1",
                              "evaluation.generation.num_inference_steps=2"])


@pytest.fixture(scope="module")
def kontext(cfg):
    from unipic.models.factory import build_pipeline

    return build_pipeline(cfg.model)


@pytest.mark.slow
def test_kontext_images_do_not_depend_on_batch_size(cfg, kontext, tmp_path):
    items = make_benchmark("shapes_geneval", cfg.evaluation, cfg.shapes).items()[:3]
    common = dict(images_per_prompt=2, seed=7, num_inference_steps=2, guidance_scale=4.0)
    generate(kontext, items, tmp_path / "a", batch_size=6, **common)
    generate(kontext, items, tmp_path / "b", batch_size=1, **common)
    for it in items:
        for k in range(2):
            a = np.asarray(Image.open(image_path(tmp_path / "a", it.item_id, k)))
            b = np.asarray(Image.open(image_path(tmp_path / "b", it.item_id, k)))
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    x0 = np.asarray(Image.open(image_path(tmp_path / "a", items[0].item_id, 0)))
    x1 = np.asarray(Image.open(image_path(tmp_path / "a", items[0].item_id, 1)))
    assert not np.array_equal(x0, x1)  # N images per prompt are different samples


@pytest.mark.slow
def test_metaquery_pipeline_runs_both_twins(cfg, kontext, tmp_path):
    from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

    mq = UniPicMetaQueryPipeline.from_kontext(kontext, cfg.metaquery)
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=mq)
    for name in ("shapes_geneval", "shapes_gedit"):
        b = res["benchmarks"][name]
        assert b["generation"]["generated"] == b["items"] and not b["metrics"]["missing_images"]
    assert res["benchmarks"]["shapes_gedit"]["judge_stats"]["excluded"] == 0
