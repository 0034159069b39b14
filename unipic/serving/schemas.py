"""The request and response shapes of the serving API, for both KServe REST protocols.

V1 (`/v1/models/NAME:predict`): `{"instances": [{"prompt": ..., "image": <b64>, "steps": 20, ...}, ...]}` ->
`{"predictions": [{"images": [<b64 png>, ...], "seeds": [...], "seed": s, "timings": {...}, ...}]}`.
V2 (`/v2/models/NAME/infer`): one instance per request; every field is an input tensor of shape [1] named as
in V1 (or a request parameter) -> outputs `images` (BYTES, base64 PNG), `seeds` (INT64), `text` (understanding),
with `model_version` and timings in the response parameters.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

TASKS = ("t2i", "edit", "understand")


class RequestError(Exception):
    """A request the server refuses: `status` is the HTTP code (400 malformed, 413 too big, 422 out of limits)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, **({"field": self.field} if self.field else {})}


class Instance(BaseModel):
    """One generation, edit or understanding request as the client sends it (unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prompt: str | None = Field(
        default=None, validation_alias=AliasChoices("prompt", "instruction", "question")
    )
    image: str | None = Field(
        default=None, description="base64 PNG/JPEG source image (editing, understanding)"
    )
    task: Literal["t2i", "edit", "understand"] | None = None
    steps: int | None = Field(default=None, validation_alias=AliasChoices("steps", "num_inference_steps"))
    guidance: float | None = Field(default=None, validation_alias=AliasChoices("guidance", "guidance_scale"))
    width: int | None = None
    height: int | None = None
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    num_images: int = Field(default=1, validation_alias=AliasChoices("num_images", "num_images_per_prompt"))
    max_new_tokens: int | None = None


def _describe(exc: ValidationError, where: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        if err["type"] == "extra_forbidden":
            allowed = (
                "prompt|instruction|question, image, task, steps, guidance, width, height, seed, num_images, "
                "max_new_tokens"
            )
            parts.append(f"{where}{loc}: unknown field; allowed: {allowed}")
        else:
            parts.append(f"{where}{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_instance(raw: Any, where: str = "") -> Instance:
    if isinstance(raw, dict) and isinstance(raw.get("image"), dict) and set(raw["image"]) == {"b64"}:
        raw = {**raw, "image": raw["image"]["b64"]}  # TF-serving style {"b64": ...}, as KServe samples send
    if not isinstance(raw, dict):
        raise RequestError(422, f"{where or 'instance'}: expected a JSON object, got {type(raw).__name__}")
    try:
        return Instance.model_validate(raw)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"]) or None
        raise RequestError(422, _describe(exc, where), field=field) from None


def parse_v1(payload: Any, max_instances: int) -> list[Instance]:
    if isinstance(payload, (bytes, bytearray)):
        raise RequestError(
            400, "the body must be JSON (Content-Type: application/json) with an 'instances' list"
        )
    if not isinstance(payload, dict) or "instances" not in payload:
        raise RequestError(422, "the body must be a JSON object with an 'instances' list", field="instances")
    extra = set(payload) - {"instances", "parameters"}
    if extra:
        raise RequestError(422, f"unknown top-level keys {sorted(extra)}; allowed: instances, parameters")
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(422, "'instances' must be a non-empty list", field="instances")
    if len(instances) > max_instances:
        raise RequestError(
            422,
            f"instances: {len(instances)} is over the limit max_instances={max_instances}",
            field="instances",
        )
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(
            422, "'parameters' must be an object of defaults for every instance", field="parameters"
        )
    return [
        parse_instance({**params, **inst} if isinstance(inst, dict) else inst, f"instances[{i}].")
        for i, inst in enumerate(instances)
    ]


V2_SCALARS: dict[str, type] = {
    "prompt": str,
    "instruction": str,
    "question": str,
    "image": str,
    "task": str,
    "steps": int,
    "num_inference_steps": int,
    "guidance": float,
    "guidance_scale": float,
    "width": int,
    "height": int,
    "seed": int,
    "num_images": int,
    "num_images_per_prompt": int,
    "max_new_tokens": int,
}


def _scalar(name: str, values: list[Any]) -> Any:
    if len(values) != 1:
        raise RequestError(
            422, f"input '{name}': expected exactly one element (shape [1]), got {len(values)}", field=name
        )
    value = values[0]
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, f"input '{name}': BYTES element is not UTF-8 text", field=name) from None
    if hasattr(value, "item"):
        value = value.item()
    return value


def parse_v2(request: Any) -> Instance:
    """An `InferRequest` (inputs, plus request parameters as a fallback) -> one Instance."""
    fields: dict[str, Any] = {}
    for key, value in dict(request.parameters or {}).items():
        if key in V2_SCALARS:
            fields[key] = value
    for inp in request.inputs:
        name = inp.name
        if name not in V2_SCALARS:
            raise RequestError(
                422, f"unknown input '{name}'; allowed inputs: {', '.join(V2_SCALARS)}", field=name
            )
        try:
            arr = inp.as_numpy()
            values = list(arr.reshape(-1))
        except Exception as exc:  # noqa: BLE001 - any undecodable tensor is the client's error
            raise RequestError(
                400,
                f"input '{name}': data does not match shape {inp.shape} and datatype {inp.datatype} ({exc})",
                field=name,
            ) from None
        fields[name] = _scalar(name, values)
    return parse_instance(fields)


def response_v1(results: list[dict[str, Any]], model_version: str) -> dict[str, Any]:
    return {"predictions": results, "model_version": model_version}
