"""`ServingClient`: text-to-image, editing and understanding against a UniPic KServe endpoint, V1 or V2 REST.

Retries only what is safe to retry: connection failures (nothing was sent) and 429/503 (the server refused
before working). A read timeout is not retried: the server may still be generating, and resubmitting would pile
work onto it (kserve/kserve#1663). 4xx answers raise `ServingRequestError` carrying the server's message.
"""

from __future__ import annotations

import base64
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import httpx
import PIL.Image

from unipic.config.serve import ClientConfig
from unipic.errors import ServiceError, UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)

RETRY_STATUS = {429, 502, 503, 504}


class ServingRequestError(UniPicError):
    """The server refused the request (4xx); the message is the server's, naming the field and the limit."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class Result:
    """One instance's answer: decoded images (or text), the seeds used, and the server's bookkeeping."""

    images: list[PIL.Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    text: str | None = None
    model_version: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def image_b64(image: PIL.Image.Image | bytes | str | Path) -> str:
    """A PIL image, PNG/JPEG bytes or a file path -> base64 (PIL images are sent as PNG)."""
    if isinstance(image, PIL.Image.Image):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    elif isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    else:
        data = Path(image).read_bytes()
    return base64.b64encode(data).decode("ascii")


def decode_png(b64: str) -> PIL.Image.Image:
    img = PIL.Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def split_endpoint(endpoint: str, model_name: str | None) -> tuple[str, str | None]:
    """`http://h:p` or a full model URL (`.../v1/models/NAME:predict`, `.../v2/models/NAME/infer`) -> base, name."""
    m = re.match(r"^(?P<base>.*?)/v[12]/models/(?P<name>[^/:]+)", endpoint.rstrip("/"))
    if m:
        return m.group("base"), model_name or m.group("name")
    return endpoint.rstrip("/"), model_name


class ServingClient:
    def __init__(
        self,
        endpoint: str,
        model_name: str | None = None,
        protocol: Literal["v1", "v2"] = "v1",
        cfg: ClientConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        if protocol not in ("v1", "v2"):
            raise UniPicError(f"protocol={protocol!r}: use v1 or v2")
        self.base, name = split_endpoint(endpoint, model_name)
        self._model_name = name
        self.protocol = protocol
        self.cfg = cfg or ClientConfig()
        timeout = httpx.Timeout(self.cfg.timeout_s, connect=self.cfg.connect_timeout_s)
        self._http = httpx.Client(base_url=self.base, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model_name(self) -> str:
        """The name given (or in the URL); else the server's only model (`GET /v1/models`); else "unipic"."""
        if self._model_name is None:
            try:
                models = self._http.get("/v1/models", timeout=5.0).json().get("models", [])
            except (httpx.HTTPError, ValueError, AttributeError):
                models = []
            self._model_name = models[0] if len(models) == 1 else "unipic"
        return self._model_name

    # --- transport ------------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        delay = self.cfg.backoff_s
        last: str = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                resp = self._http.post(path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "%s%s: %s (attempt %d/%d)", self.base, path, last, attempt + 1, self.cfg.retries + 1
                )
                continue
            except httpx.ReadTimeout:
                raise ServiceError(
                    f"{self.base}{path} did not answer within {self.cfg.timeout_s:.0f} s "
                    "(serve.client.timeout_s); the server may still be working, so it was not "
                    "retried. Raise the timeout or ask for fewer steps/images"
                ) from None
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if 400 <= resp.status_code < 500:
                try:
                    message = resp.json().get("error") or resp.text
                except ValueError:
                    message = resp.text
                raise ServingRequestError(resp.status_code, str(message))
            if resp.status_code >= 500:
                raise ServiceError(f"{self.base}{path}: server error {resp.status_code}: {resp.text[:500]}")
            return resp.json()
        raise ServiceError(
            f"{self.base}{path} failed after {self.cfg.retries + 1} attempts ({last}); is the server "
            "running? start it with `unipic serve --model DIR` and check `unipic serve status`"
        )

    def ready(self) -> bool:
        try:
            return self._http.get(f"/v2/models/{self.model_name}/ready", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"model '{self.model_name}' at {self.base} not ready after {timeout:.0f} s"
                )
            time.sleep(0.25)

    # --- protocols ------------------------------------------------------------------------------------------
    def infer_v1(self, instances: list[dict[str, Any]]) -> dict[str, Any]:
        return self._post(f"/v1/models/{self.model_name}:predict", {"instances": instances})

    def infer_v2(self, instance: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        inputs = []
        for name, value in instance.items():
            if value is None:
                continue
            if isinstance(value, str):
                dtype = "BYTES"
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UniPicError(f"field {name}={value!r}: V2 inputs are strings or numbers")
            else:
                dtype = "INT64" if isinstance(value, int) else "FP64"
            inputs.append({"name": name, "shape": [1], "datatype": dtype, "data": [value]})
        body: dict[str, Any] = {"inputs": inputs}
        if request_id:
            body["id"] = request_id
        return self._post(f"/v2/models/{self.model_name}/infer", body)

    def run(self, instance: dict[str, Any]) -> Result:
        """One instance through the configured protocol -> Result."""
        instance = {k: v for k, v in instance.items() if v is not None}
        if self.protocol == "v1":
            res = self.infer_v1([instance])
            pred = res["predictions"][0]
            return Result(
                images=[decode_png(b) for b in pred.get("images", [])],
                seeds=pred.get("seeds", []),
                text=pred.get("text"),
                model_version=pred.get("model_version", ""),
                timings=pred.get("timings", {}),
                raw=pred,
            )
        res = self.infer_v2(instance)
        outs = {o["name"]: o["data"] for o in res.get("outputs", [])}
        params = res.get("parameters") or {}
        timings = {
            k: params[k] for k in ("queue_ms", "inference_ms", "total_ms", "batch_images") if k in params
        }
        text = outs.get("text", [None])[0]
        return Result(
            images=[decode_png(b) for b in outs.get("images", [])],
            seeds=list(outs.get("seeds", [])),
            text=text,
            model_version=res.get("model_version") or params.get("model_version", ""),
            timings=timings,
            raw=res,
        )

    def generate(
        self,
        prompt: str,
        *,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | None = None,
        num_images: int = 1,
    ) -> Result:
        return self.run(
            {
                "prompt": prompt,
                "task": "t2i",
                "steps": steps,
                "guidance": guidance,
                "width": width,
                "height": height,
                "seed": seed,
                "num_images": num_images,
            }
        )

    def edit(
        self,
        instruction: str,
        image: PIL.Image.Image | bytes | str | Path,
        *,
        steps: int | None = None,
        guidance: float | None = None,
        width: int | None = None,
        height: int | None = None,
        seed: int | None = None,
        num_images: int = 1,
    ) -> Result:
        return self.run(
            {
                "prompt": instruction,
                "task": "edit",
                "image": image_b64(image),
                "steps": steps,
                "guidance": guidance,
                "width": width,
                "height": height,
                "seed": seed,
                "num_images": num_images,
            }
        )

    def understand(
        self,
        question: str,
        image: PIL.Image.Image | bytes | str | Path | None = None,
        max_new_tokens: int | None = None,
    ) -> Result:
        return self.run(
            {
                "prompt": question,
                "task": "understand",
                "image": image_b64(image) if image is not None else None,
                "max_new_tokens": max_new_tokens,
            }
        )


def save_result(result: Result, out_dir: str | Path, stem: str = "image") -> list[Path]:
    """Write the images as PNG files named `{stem}-{seed}.png` (atomic: temp name, then rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for img, seed in zip(result.images, result.seeds or range(len(result.images))):
        path = out / f"{stem}-{seed}.png"
        tmp = path.with_name(f".tmp-{path.name}")
        img.save(tmp, format="PNG")
        tmp.replace(path)
        paths.append(path)
    return paths


def remote_images(
    endpoint: str,
    prompts: list[str],
    *,
    n: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int = 0,
    size: int | None = None,
    image: PIL.Image.Image | None = None,
    cfg: ClientConfig | None = None,
    model_name: str | None = None,
    protocol: Literal["v1", "v2"] = "v1",
) -> list[PIL.Image.Image]:
    """What `pipe(prompts, image=..., num_images_per_prompt=n, generator=[seed + i ...])` returns, from a server:
    prompt p's k-th image uses seed + p*n + k, as the local CLI's flat generator list does."""
    images: list[PIL.Image.Image] = []
    with ServingClient(endpoint, model_name, protocol, cfg) as client:
        for p, prompt in enumerate(prompts):
            res = client.run(
                {
                    "prompt": prompt,
                    "task": "edit" if image is not None else "t2i",
                    "image": image_b64(image) if image is not None else None,
                    "steps": steps,
                    "guidance": guidance,
                    "width": size,
                    "height": size,
                    "seed": seed + p * n,
                    "num_images": n,
                }
            )
            images += res.images
    return images
