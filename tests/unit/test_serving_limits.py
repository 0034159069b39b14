"""Request validation: every violation is a 4xx naming the field and the limit; defaults fill what is left out."""

import base64
import io

import PIL.Image
import pytest

from unipic.config.serve import DefaultsConfig, LimitsConfig
from unipic.serving.limits import ModelGeometry, resolve
from unipic.serving.schemas import RequestError, parse_instance, parse_v1, parse_v2

LIMITS = LimitsConfig(
    max_side=64,
    max_steps=20,
    max_images=4,
    max_instances=3,
    max_image_bytes=20_000,
    max_payload_bytes=100_000,
    max_prompt_chars=50,
)
DEFAULTS = DefaultsConfig(num_inference_steps=4, guidance_scale=3.0, max_new_tokens=8)
GEO = ModelGeometry(multiple=4, max_side=128, default_side=32)


def png(w=32, h=32, color=(200, 10, 10), fmt="PNG") -> str:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (w, h), color).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def job(**fields):
    return resolve(parse_instance(fields), LIMITS, DEFAULTS, GEO)


def rejected(status: int, field: str, **fields) -> str:
    with pytest.raises(RequestError) as info:
        job(**fields)
    assert info.value.status == status, info.value.message
    assert info.value.field == field
    return info.value.message


def test_defaults_and_task_inference():
    j = job(prompt="a red circle", seed=7)
    assert (j.task, j.steps, j.guidance, j.width, j.height, j.seed, j.num_images) == (
        "t2i",
        4,
        3.0,
        32,
        32,
        7,
        1,
    )
    e = job(instruction="make it blue", image=png(40, 24))
    assert e.task == "edit" and (e.width, e.height) == (40, 24) and e.image.size == (40, 24)
    seeds = {job(prompt="x").seed for _ in range(20)}
    assert len(seeds) > 1 and all(0 <= s < 2**31 for s in seeds)  # a fresh seed when none is given


def test_edits_get_their_own_default_guidance_and_an_explicit_one_wins():
    split = DEFAULTS.model_copy(update={"edit_guidance_scale": 1.5})
    edit = dict(instruction="make it blue", image=png())
    assert job(**edit).guidance == 3.0  # None: the edit takes guidance_scale
    assert resolve(parse_instance(edit), LIMITS, split, GEO).guidance == 1.5
    assert resolve(parse_instance({"prompt": "p"}), LIMITS, split, GEO).guidance == 3.0
    assert resolve(parse_instance({**edit, "guidance": 5.0}), LIMITS, split, GEO).guidance == 5.0
    with pytest.raises(ValueError, match="edit_guidance_scale"):
        DefaultsConfig(edit_guidance_scale=-1)


def test_aliases_are_accepted():
    j = job(prompt="p", num_inference_steps=3, guidance_scale=1.5, num_images_per_prompt=2)
    assert (j.steps, j.guidance, j.num_images) == (3, 1.5, 2)


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"prompt": "p", "steps": 21}, "steps", "max_steps"),
        ({"prompt": "p", "steps": 0}, "steps", "max_steps"),
        ({"prompt": "p", "num_images": 5}, "num_images", "max_images"),
        ({"prompt": "p", "width": 68}, "width", "max_side=64"),
        ({"prompt": "p", "height": 30}, "height", "multiple of 4"),
        ({"prompt": "p", "guidance": 21.0}, "guidance", "max_guidance"),
        ({"prompt": "p", "guidance": float("nan")}, "guidance", "max_guidance"),
        ({"prompt": "x" * 51}, "prompt", "max_prompt_chars=50"),
        ({"prompt": "   "}, "prompt", "required"),
        ({"steps": 3}, "prompt", "required"),
        ({"prompt": "p", "task": "edit"}, "image", "source image"),
        ({"prompt": "p", "task": "understand"}, "task", "MetaQuery"),
        ({"prompt": "p", "max_new_tokens": 65}, "max_new_tokens", "max_new_tokens"),
    ],
)
def test_limits_are_422_naming_field_and_limit(fields, field, words):
    message = rejected(422, field, **fields)
    assert field.split(".")[0] in message and words in message


def test_model_geometry_limit_applies_when_config_is_looser():
    geo = ModelGeometry(multiple=4, max_side=48, default_side=32)
    with pytest.raises(RequestError, match="model's 48"):
        resolve(parse_instance({"prompt": "p", "width": 64}), LIMITS, DEFAULTS, geo)


def test_bad_images_are_400_and_large_ones_422():
    assert "base64" in rejected(400, "image", prompt="p", image="not base64!!")
    truncated = base64.b64encode(base64.b64decode(png(64, 64, (1, 2, 3)))[:60]).decode()
    assert "truncated" in rejected(400, "image", prompt="p", image=truncated)
    assert "decodable" in rejected(400, "image", prompt="p", image=base64.b64encode(b"hello world").decode())
    gif = png(8, 8, fmt="GIF")
    assert "GIF" in rejected(400, "image", prompt="p", image=gif)
    noisy = base64.b64encode(bytes(range(256)) * 200).decode()
    assert "max_image_bytes" in rejected(422, "image", prompt="p", image=noisy)
    assert "per side" in rejected(422, "image", prompt="p", image=png(300, 8))


def test_edit_source_resized_to_requested_size_and_t2i_refuses_image():
    e = job(prompt="p", image=png(40, 40), width=32, height=16)
    assert e.image.size == (32, 16) and e.batch_key() == ("edit", 16, 32, 4, 3.0)
    rejected(422, "image", prompt="p", image=png(), task="t2i")


def test_unknown_fields_are_named():
    with pytest.raises(RequestError) as info:
        parse_instance({"prompt": "p", "stepz": 3})
    assert info.value.status == 422 and "stepz" in info.value.message


def test_v1_envelope():
    assert len(parse_v1({"instances": [{"prompt": "a"}, {"prompt": "b"}]}, 3)) == 2
    shared = parse_v1({"instances": [{"prompt": "a"}], "parameters": {"steps": 2}}, 3)
    assert shared[0].steps == 2
    for body, words in [
        ({"instances": []}, "non-empty"),
        ({"instances": [{"prompt": "a"}] * 4}, "max_instances=3"),
        ({"foo": 1}, "instances"),
        ({"instances": [1]}, "JSON object"),
        ({"instances": [{}], "extra": 1}, "unknown top-level"),
    ]:
        with pytest.raises(RequestError, match=words):
            parse_v1(body, 3)
    with pytest.raises(RequestError) as info:
        parse_v1(b"raw bytes", 3)
    assert info.value.status == 400


def test_v2_inputs_and_parameters():
    from kserve.protocol.infer_type import InferInput, InferRequest

    req = InferRequest(
        "unipic",
        [InferInput("prompt", [1], "BYTES", ["a circle"]), InferInput("steps", [1], "INT32", [3])],
        parameters={"seed": 9},
    )
    inst = parse_v2(req)
    assert (inst.prompt, inst.steps, inst.seed) == ("a circle", 3, 9)
    bad = InferRequest("unipic", [InferInput("prompt", [2], "BYTES", ["a", "b"])])
    with pytest.raises(RequestError, match="exactly one element"):
        parse_v2(bad)
    unknown = InferRequest("unipic", [InferInput("promt", [1], "BYTES", ["a"])])
    with pytest.raises(RequestError, match="unknown input 'promt'"):
        parse_v2(unknown)
    mismatched = InferRequest("unipic", [InferInput("steps", [3], "INT32", [1])])
    with pytest.raises(RequestError) as info:
        parse_v2(mismatched)
    assert info.value.status == 400
