"""`UniPicPredictor`: the KServe model that serves a UniPic pipeline folder (Kontext or MetaQuery).

`load()` resolves the model (a local folder, an `s3://` URI from our object store, or the storage-initializer's
`/mnt/models` when `STORAGE_URI` is set in a cluster), loads it, runs a warm-up generation, and only then sets
`ready`: KServe's readiness probe stays red through the cold start instead of routing traffic to a pod that
would time out. `predict()` takes V1 dicts and V2 `InferRequest`s; every instance is validated
(`unipic.serving.limits`) and queued in the `MicroBatcher`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unipic.config.serve import ServeConfig
from unipic.config.store import StoreConfig
from unipic.errors import ServiceError
from unipic.logging import get_logger
from unipic.serving import metrics
from unipic.serving.batching import BatchInfo, MicroBatcher
from unipic.serving.kserve_import import InferOutput, InferRequest, InferResponse, kserve
from unipic.serving.limits import Job, ModelGeometry, resolve
from unipic.serving.schemas import RequestError, parse_v1, parse_v2, response_v1

log = get_logger(__name__)

KSERVE_MODEL_DIR = Path("/mnt/models")
"""Where KServe's storage-initializer puts `STORAGE_URI` (predictor_custom.go)."""


def resolve_model_dir(
    model: str | Path | None, store_cfg: StoreConfig | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A folder, an s3:// URI (fetched and verified through our store), or, with no argument, the cluster's
    storage-initializer download (`/mnt/models`), else `$STORAGE_URI` fetched here."""
    from unipic.storage import materialize

    if model is None or str(model) == "":
        if (KSERVE_MODEL_DIR / "model_index.json").is_file():
            return KSERVE_MODEL_DIR
        env = os.environ.get("STORAGE_URI")
        if not env:
            raise ServiceError("no model given: pass --model DIR_OR_S3_URI (or set STORAGE_URI in a cluster)")
        model = env
    path = materialize(model, store_cfg, cache_dir)
    if not (Path(path) / "model_index.json").is_file():
        raise ServiceError(
            f"{model} is not a model folder (no model_index.json); serve the output of "
            "`unipic models bootstrap`, a training stage, or a published s3:// model URI"
        )
    return Path(path)


def model_version(path: Path) -> str:
    """The published manifest's content hash when there is one (s3:// models), else a hash of the folder's
    file list, sizes and model card: stable for the same folder, different after retraining."""
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            total = json.loads(manifest.read_text()).get("total_sha256")
            if total:
                return f"sha256-{total[:12]}"
        except (OSError, ValueError):
            pass
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
        if f.name in ("model_index.json", "unipic_model.json", "config.json"):
            h.update(f.read_bytes())
    return f"local-{h.hexdigest()[:12]}"


def encode_png(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class UniPicPredictor(kserve.Model):
    """A kserve.Model over `unipic.pipelines.load_pipeline`. Pass `pipeline=` to serve an in-memory pipeline."""

    def __init__(
        self,
        name: str,
        model: str | Path | None,
        cfg: ServeConfig,
        store_cfg: StoreConfig | None = None,
        pipeline: Any = None,
    ):
        super().__init__(name)
        self.model_ref = model
        self.cfg = cfg
        self.store_cfg = store_cfg
        self.pipe = pipeline
        self.model_dir: Path | None = None
        self.version = "in-memory" if pipeline is not None else "unloaded"
        self.geometry: ModelGeometry | None = None
        self.batcher: MicroBatcher[Job] | None = None
        self.load_seconds: float | None = None
        self.ready = False

    # --- lifecycle ------------------------------------------------------------------------------------------
    def load(self) -> bool:
        started = time.perf_counter()
        if self.cfg.torch_threads:
            import torch

            torch.set_num_threads(self.cfg.torch_threads)
        if self.pipe is None:
            from unipic.pipelines.metaquery import load_pipeline

            self.model_dir = resolve_model_dir(
                self.model_ref, self.store_cfg, self.store_cfg.cache_dir if self.store_cfg else None
            )
            log.info("loading %s", self.model_dir)
            self.pipe = load_pipeline(self.model_dir)
            self.version = model_version(self.model_dir)
        if hasattr(self.pipe, "set_progress_bar_config"):
            self.pipe.set_progress_bar_config(disable=True)
        self.geometry = ModelGeometry(
            multiple=self.pipe.size_multiple,
            max_side=self.pipe.max_image_side,
            default_side=self.pipe.default_image_size,
            can_understand=hasattr(self.pipe, "understand"),
        )
        labels = {"model_name": self.name}
        self.batcher = MicroBatcher(
            self.run_batch,
            self.cfg.batching,
            on_depth=lambda n: metrics.QUEUE_DEPTH.labels(**labels).set(n),
            on_batch=lambda n: metrics.BATCH_SIZE.labels(**labels).observe(n),
        )
        if self.cfg.warmup:
            self.warmup()
        self.load_seconds = time.perf_counter() - started
        self.ready = True
        log.info("model %s ready (version %s) after %.1f s", self.name, self.version, self.load_seconds)
        return self.ready

    def warmup(self) -> None:
        """One smallest generation: first-call costs (allocator, kernels, lazy init) are paid before ready."""
        assert self.geometry is not None
        side = self.geometry.default_side
        job = Job(
            task="t2i",
            prompt="warm up",
            image=None,
            steps=1,
            guidance=1.0,
            width=side,
            height=side,
            seed=0,
            num_images=1,
            max_new_tokens=1,
        )
        self.run_batch([job])

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.ready = False

    # --- V2 model metadata (`GET /v2/models/NAME`): what a generic V2 client needs to build a request -------
    def get_input_types(self) -> list[dict[str, Any]]:
        text, num = ("BYTES", [1]), [1]
        inputs = [
            ("prompt", *text),
            ("image", *text),
            ("task", *text),
            ("steps", "INT32", num),
            ("guidance", "FP32", num),
            ("width", "INT32", num),
            ("height", "INT32", num),
            ("seed", "INT64", num),
            ("num_images", "INT32", num),
        ]
        if self.geometry is not None and self.geometry.can_understand:
            inputs.append(("max_new_tokens", "INT32", num))
        return [{"name": n, "datatype": d, "shape": s} for n, d, s in inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        outputs = [
            {"name": "images", "datatype": "BYTES", "shape": [-1]},
            {"name": "seeds", "datatype": "INT64", "shape": [-1]},
        ]
        if self.geometry is not None and self.geometry.can_understand:
            outputs.append({"name": "text", "datatype": "BYTES", "shape": [1]})
        return outputs

    # --- the model call (worker thread) ---------------------------------------------------------------------
    def run_batch(self, jobs: Sequence[Job]) -> list[dict[str, Any]]:
        """One pipeline call for compatible jobs; each image has its own generator seeded `seed + k`, so an
        image does not depend on which batch it landed in."""
        import torch

        first = jobs[0]
        t0 = time.perf_counter()
        if first.task == "understand":
            answers = self.pipe.understand(
                [j.image for j in jobs], [j.prompt for j in jobs], max_new_tokens=first.max_new_tokens
            )
            model_ms = round((time.perf_counter() - t0) * 1000, 3)
            return [{"text": a, "model_ms": model_ms} for a in answers]
        prompts, images, gens, seeds = [], [], [], []
        for j in jobs:
            for k in range(j.num_images):
                prompts.append(j.prompt)
                images.append(j.image)
                seeds.append(j.seed + k)
                gens.append(torch.Generator().manual_seed(j.seed + k))
        out = self.pipe(
            prompts,
            image=images if first.task == "edit" else None,
            height=first.height,
            width=first.width,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            num_images_per_prompt=1,
            generator=gens,
            output_type="pil",
        ).images
        results, i = [], 0
        for j in jobs:
            n = j.num_images
            results.append({"images": [encode_png(im) for im in out[i : i + n]], "seeds": seeds[i : i + n]})
            i += n
        model_ms = round((time.perf_counter() - t0) * 1000, 3)
        return [{**r, "model_ms": model_ms} for r in results]

    # --- the request path (event loop) ----------------------------------------------------------------------
    def _resolve(self, instance: Any) -> Job:
        assert self.geometry is not None
        return resolve(instance, self.cfg.limits, self.cfg.defaults, self.geometry)

    async def _serve_job(self, job: Job) -> dict[str, Any]:
        assert self.batcher is not None
        t0 = time.perf_counter()
        labels = {"model_name": self.name}
        try:
            result, info = await self.batcher.submit(job)
        except RequestError:
            metrics.REQUESTS.labels(outcome="rejected", **labels).inc()
            raise
        except Exception:
            metrics.REQUESTS.labels(outcome="error", **labels).inc()
            raise
        total = time.perf_counter() - t0
        metrics.REQUESTS.labels(outcome="ok", **labels).inc()
        metrics.REQUEST_LATENCY.labels(task=job.task, **labels).observe(total)
        metrics.QUEUE_WAIT.labels(**labels).observe(info.queue_s)
        return self._describe(job, result, info, total)

    def _describe(self, job: Job, result: dict[str, Any], info: BatchInfo, total: float) -> dict[str, Any]:
        result = dict(result)
        model_ms = result.pop("model_ms", None)
        out: dict[str, Any] = {
            "task": job.task,
            **result,
            "model_version": self.version,
            "timings": {
                "queue_ms": round(info.queue_s * 1000, 3),
                "inference_ms": round(info.run_s * 1000, 3),
                "model_ms": model_ms,
                "total_ms": round(total * 1000, 3),
                "batch_images": info.size,
            },
        }
        if job.task != "understand":
            out.update(
                seed=job.seed, width=job.width, height=job.height, steps=job.steps, guidance=job.guidance
            )
        return out

    async def predict(
        self, payload: dict | InferRequest | bytes, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        if not self.ready:
            raise kserve.errors.ModelNotReady(self.name, "warming up")
        if isinstance(payload, InferRequest):
            job = self._resolve(parse_v2(payload))
            return self._v2_response(payload, job, await self._serve_job(job))
        jobs = [self._resolve(inst) for inst in parse_v1(payload, self.cfg.limits.max_instances)]
        results = await asyncio.gather(*(self._serve_job(j) for j in jobs))
        return response_v1(list(results), self.version)

    def _v2_response(self, request: InferRequest, job: Job, res: dict[str, Any]) -> InferResponse:
        if job.task == "understand":
            outputs = [InferOutput("text", [1], "BYTES", data=[res["text"]])]
        else:
            n = len(res["images"])
            outputs = [
                InferOutput("images", [n], "BYTES", data=res["images"]),
                InferOutput("seeds", [n], "INT64", data=res["seeds"]),
            ]
        params: dict[str, Any] = {
            "model_version": self.version,
            "task": job.task,
            **{k: v for k, v in res["timings"].items()},
        }
        if job.task != "understand":
            params.update(seed=job.seed, width=job.width, height=job.height, steps=job.steps)
        return InferResponse(
            response_id=request.id or uuid.uuid4().hex,
            model_name=self.name,
            infer_outputs=outputs,
            model_version=self.version,
            parameters=params,
        )
