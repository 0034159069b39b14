"""The public benchmarks end to end on their fixture files (own formats, ShapesWorld content), through the
real judge client and the local ShapesWorld judge server: a pipeline that follows every prompt perfectly
gets each benchmark's maximum (GEdit O 10, ImgEdit 5, DPG 100); one that ignores the instruction does not."""

import pytest
from PIL import Image

from unipic.config import load_config
from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene, SceneObject
from unipic.evaluation import evaluate

S = 64


def scene(*objs, background="white"):
    return Scene(size=S, background=background,
                 objects=[SceneObject(shape=s, color=c, size="medium", bbox=b) for s, c, b in objs])


RC, BS, GT = ("circle", "red", (6, 6, 24, 24)), ("square", "blue", (38, 38, 56, 56)), ("triangle", "green", (38, 6, 56, 24))
EDITS = {
    "make the red circle green": scene(("circle", "green", RC[2]), BS),
    "add a green triangle": scene(RC, BS, GT),
    "remove the blue square": scene(RC),
    "replace the red circle with a square": scene(("square", "red", RC[2]), BS),
    "move the blue square up": scene(RC, ("square", "blue", (38, 6, 56, 24))),
    "make the background black": scene(RC, BS, background="black"),
    "make the red circle yellow": scene(("circle", "yellow", RC[2]), BS),
    "remove the green triangle": scene(BS),
    "replace the blue square with a circle": scene(GT, ("circle", "blue", BS[2])),
    "make the background gray": scene(GT, BS, background="gray"),
}
T2I = {
    "a red circle left of a blue square": scene(("circle", "red", (4, 22, 22, 40)), ("square", "blue", (40, 22, 58, 40))),
    "three green triangles": scene(("triangle", "green", (4, 4, 22, 22)), ("triangle", "green", (40, 4, 58, 22)),
                                   ("triangle", "green", (22, 40, 40, 58))),
    "a yellow square above a purple circle": scene(("square", "yellow", (22, 4, 40, 22)),
                                                   ("circle", "purple", (22, 40, 40, 58))),
}


class FixturePipeline:
    def __init__(self, follow=True):
        self.follow = follow

    def __call__(self, prompt, image=None, generator=None, **kw):
        out = []
        for i, p in enumerate(prompt):
            if image is None:
                out.append(Image.fromarray(render(T2I[p])) if self.follow else Image.new("RGB", (S, S), "white"))
            else:
                src = image[i]
                if not self.follow:
                    out.append(src.copy())
                    continue
                out.append(Image.fromarray(render(EDITS[p])))

        class R:
            images = out
        return R()


@pytest.fixture(scope="module")
def cfg():
    return load_config("ci", ["evaluation.generation.images_per_prompt=4", "evaluation.judge.backoff_s=0.01"])


@pytest.mark.parametrize("follow", [True, False])
def test_public_benchmarks_on_fixtures(cfg, tmp_path, follow):
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path, pipeline=FixturePipeline(follow),
                   benchmarks=["gedit", "imgedit", "dpg"])
    b = res["benchmarks"]
    if follow:
        assert b["gedit"]["headline"] == pytest.approx(10.0)
        assert set(b["gedit"]["metrics"]["groups"]) == {"background_change", "color_alter", "motion_change",
                                                        "subject-add", "subject-remove", "subject-replace"}
        assert b["imgedit"]["headline"] == pytest.approx(5.0)
        assert b["dpg"]["headline"] == pytest.approx(100.0)
    else:
        assert b["gedit"]["headline"] < 2.0 and b["imgedit"]["headline"] < 2.0 and b["dpg"]["headline"] == 0.0
    for name in ("gedit", "imgedit", "dpg"):
        assert b[name]["judge_stats"]["excluded"] == 0 and b[name]["judge"]["protocol"] == "openai-chat-completions"


def test_geneval_public_with_the_shapesworld_detector_runs_the_full_prompt_set(cfg, tmp_path):
    c = cfg.evaluation.model_copy(update={"geneval_detector": "shapesworld", "limit": 6}, deep=True)
    c.generation.images_per_prompt = 1

    class Blank:
        def __call__(self, prompt, **kw):
            class R:
                images = [Image.new("RGB", (32, 32), "white") for _ in prompt]
            return R()

    res = evaluate(c, cfg.shapes, tmp_path, pipeline=Blank(), benchmarks=["geneval"])
    assert res["benchmarks"]["geneval"]["items"] == 6 and res["benchmarks"]["geneval"]["headline"] == 0.0


def test_geneval_mask2former_needs_a_model_dir(cfg, tmp_path):
    from unipic.evaluation.errors import EvaluationError

    c = cfg.evaluation.model_copy(update={"limit": 1}, deep=True)
    c.generation.images_per_prompt = 1

    class Blank:
        def __call__(self, prompt, **kw):
            class R:
                images = [Image.new("RGB", (32, 32), "white") for _ in prompt]
            return R()

    with pytest.raises(EvaluationError, match="geneval_model_dir"):
        evaluate(c, cfg.shapes, tmp_path, pipeline=Blank(), benchmarks=["geneval"])
