"""`evaluate`: the evaluation stage. For each benchmark: items -> generate (resumable) -> judge -> aggregate;
then results.json, metrics.jsonl, rows per benchmark, and an HTML report with a comparison table.

Outputs under `out_dir`:
    results.json                 everything a gate or a person needs (written last, atomically)
    metrics.jsonl                one line per (benchmark, metric)
    report.html                  tables, image grids with prompts and verdicts, comparison table
    <benchmark>/rows.jsonl       one judged image per line
    <benchmark>/images/<item>/<k>.png   the generated images (reused by a resumed run)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from unipic.config.base import config_hash
from unipic.evaluation.benchmarks import JudgeContext, make_benchmark
from unipic.evaluation.errors import EvaluationError
from unipic.evaluation.generation import generate
from unipic.lineage import Lineage
from unipic.logging import get_logger

log = get_logger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(finite_or_none(data), indent=2, default=_jsonable, allow_nan=False))
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return str(x)


@contextlib.contextmanager
def judge_context(cfg: Any, needed: bool) -> Iterator[JudgeContext]:
    """Local mode starts the ShapesWorld judge server on a free loopback port for the run's duration."""
    if not needed:
        yield JudgeContext()
        return
    from unipic.judges.openai_vlm import OpenAIVLMJudge

    if cfg.judge_mode == "local":
        from unipic.judges.local_server import LocalJudgeServer

        with LocalJudgeServer(model=cfg.judge.model) as srv:
            jc = cfg.judge.model_copy(update={"base_url": srv.openai_base_url})
            with OpenAIVLMJudge.from_config(jc) as vlm:
                yield JudgeContext(vlm=vlm)
        return
    with OpenAIVLMJudge.from_config(cfg.judge) as vlm:
        yield JudgeContext(vlm=vlm)


def load_model(model: str, store_cfg: Any = None, cache_dir: str | Path | None = None) -> Any:
    """A pipeline from a local folder or an s3:// URI (fetched and verified into the cache)."""
    path: Path = Path(model)
    if model.startswith("s3://"):
        from unipic.storage import materialize

        path = Path(materialize(model, store_cfg, cache_dir) if cache_dir else materialize(model, store_cfg))
    if not path.is_dir():
        raise EvaluationError(f"model {model} is not a folder or s3:// URI; give a diffusers model folder")
    from unipic.pipelines.metaquery import load_pipeline

    return load_pipeline(path)


def evaluate(cfg: Any, shapes: Any, out_dir: str | Path, *, model: str | None = None, pipeline: Any = None,
             benchmarks: Sequence[str] | None = None, store_cfg: Any = None, previous: Any = None,
             reference_path: str | Path | None = None, publish_uri: str | None = None) -> dict[str, Any]:
    """Run the benchmarks of `cfg` (an `EvaluationConfig`) on a model; `shapes` is the ShapesWorld
    config the model was trained on (its vocabulary defines the twins). Returns the results dict.
    `publish_uri` (s3://...) publishes the whole output folder atomically (manifest last) when done."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(benchmarks or cfg.benchmarks)
    if not names:
        raise EvaluationError("no benchmarks selected; set evaluation.benchmarks or pass --benchmark")
    benches = [make_benchmark(n, cfg, shapes) for n in names]
    if pipeline is None:
        if not model:
            raise EvaluationError("no model given: pass --model DIR|s3://...")
        from unipic.device import resolve_device

        pipeline = load_model(model, store_cfg)
        if callable(getattr(pipeline, "to", None)):  # oracles and remote scorers hold no weights
            pipeline.to(resolve_device(cfg.generation.device, key="evaluation.generation.device"))
    needs_judge = any(n in ("shapes_gedit", "gedit", "imgedit", "dpg") for n in names)
    g = cfg.generation
    results: dict[str, Any] = {
        "model": model or getattr(pipeline, "name_or_path", "in-memory pipeline"),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "config_hash": config_hash(cfg),
        "lineage": Lineage(stage="evaluate", config_hash=config_hash(cfg), parent_model=model).model_dump(),
        "benchmarks": {},
    }
    with judge_context(cfg, needs_judge) as ctx:
        for bench in benches:
            log.info("benchmark %s", bench.name)
            items = bench.items()
            if cfg.limit:
                items = items[:cfg.limit]
            bdir = out / bench.name
            n_img = bench.images_per_prompt()
            gen = generate(pipeline, items, bdir, images_per_prompt=n_img, seed=g.seed,
                           num_inference_steps=g.num_inference_steps, guidance_scale=g.guidance_scale,
                           batch_size=g.batch_size, height=g.height, width=g.width,
                           image_guidance_scale=g.image_guidance_scale, edit_guidance_scale=g.edit_guidance_scale)
            before = ctx.vlm.stats.to_dict() if ctx.vlm else None
            t0 = time.perf_counter()
            rows = bench.judge(items, bdir, ctx)
            judge_s = time.perf_counter() - t0
            metrics = finite_or_none(bench.aggregate(rows))
            js = _stats_delta(before, ctx.vlm.stats.to_dict()) if ctx.vlm and bench.name not in (
                "shapes_geneval", "geneval") else None
            if cfg.export_official_layout:
                from unipic.evaluation.export import export_layout

                export_layout(bench.name, items, bdir, n_img, bdir / "official")
            with (bdir / "rows.jsonl").open("w") as f:
                for r in rows:
                    f.write(json.dumps(r, default=_jsonable) + "\n")
            headline = metrics.get(bench.headline)
            results["benchmarks"][bench.name] = {
                "headline": headline, "headline_key": bench.headline, "scale": bench.scale,
                "reference_key": bench.reference_key, "metrics": metrics, "items": len(items),
                "images_per_prompt": n_img, "generation": gen.to_dict(), "judge_stats": js,
                "judge": ctx.vlm.identity if (ctx.vlm and js) else {"model": "detector",
                                                                     "name": "exact ShapesWorld detector"},
                "throughput": {
                    "judge_images_per_s": round(len(rows) / judge_s, 3) if judge_s > 0 else None,
                    "generate_images_per_s": round(gen.images_per_s, 3),
                    "end_to_end_images_per_s": round(len(rows) / (judge_s + gen.seconds), 3)
                    if (judge_s + gen.seconds) > 0 else None,
                },
            }
            log.info("%s: %s = %s", bench.name, bench.headline, headline)
    prev = None
    if previous is not None:
        from unipic.evaluation.gate import load_results

        prev = load_results(previous)
    results["previous_model"] = prev.get("model") if prev else None
    _write_metrics(out / "metrics.jsonl", results)
    from unipic.evaluation.report import write_report

    write_report(out / "report.html", results, out, previous=prev, reference_path=reference_path,
                 max_items=cfg.grid_max_items)
    if publish_uri:
        results["published_uri"] = publish_uri
    write_json_atomic(out / "results.json", results)
    if publish_uri:
        from unipic.storage import ObjectStore

        headlines = {n: b["headline"] for n, b in results["benchmarks"].items()}
        ObjectStore(store_cfg).publish_dir(out, publish_uri, metadata={
            "lineage": results["lineage"], "headlines": finite_or_none(headlines), "model": results["model"]})
        log.info("published %s", publish_uri)
    return results


def finite_or_none(x: Any) -> Any:
    """NaN/inf -> None, so results.json is strict JSON and 'no score' never reads as a number."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite_or_none(v) for v in x]
    return x


def _stats_delta(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    if before is None:
        return after
    out = {k: after[k] - before[k] for k in ("requests", "ok", "excluded", "retries", "reasks")}
    out["failures"] = {k: after["failures"].get(k, 0) - before["failures"].get(k, 0) for k in after["failures"]}
    out["failure_rate"] = out["excluded"] / out["requests"] if out["requests"] else 0.0
    return out


def _write_metrics(path: Path, results: dict[str, Any]) -> None:
    from unipic.evaluation.gate import flat_metrics

    with path.open("w") as f:
        for k, v in sorted(flat_metrics(results).items()):
            f.write(json.dumps({"metric": k, "value": v}) + "\n")
