"""`unipic eval` (run benchmarks on a model) and `unipic gate` (promote / reject before deployment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

def _load(uri: str | None, store_cfg):
    from unipic.evaluation.gate import load_results

    return load_results(uri, store_cfg)


BENCH_HELP = "Benchmark (repeatable): shapes_geneval, shapes_gedit, geneval, dpg, gedit, imgedit."


def evaluate(
    model: Annotated[str, typer.Option("--model", "-m", help="Model folder or s3:// URI (diffusers layout).")],
    benchmark: Annotated[list[str] | None, typer.Option("--benchmark", "-b", help=BENCH_HELP)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (resumable: images are reused).")] = Path(
        ".unipic/eval"),
    previous: Annotated[str | None, typer.Option(
        "--previous", help="results.json (or its folder) of the previous model, for the comparison table")] = None,
    publish: Annotated[str | None, typer.Option(
        "--publish", help="s3:// prefix to publish the whole evaluation folder to (manifest written last)")] = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Evaluate a model on benchmarks; writes results.json, metrics.jsonl and report.html."""
    from unipic.config.evaluation import BENCHMARKS
    from unipic.evaluation import evaluate as run

    cfg = make_config(preset, set_)
    for b in benchmark or []:
        if b not in BENCHMARKS:
            raise typer.BadParameter(f"unknown benchmark '{b}'; choose from {', '.join(BENCHMARKS)}",
                                     param_hint="--benchmark")
    res = run(cfg.evaluation, cfg.shapes, out, model=model, benchmarks=benchmark or None, store_cfg=cfg.store,
              previous=_load(previous, cfg.store), publish_uri=publish)
    for name, b in res["benchmarks"].items():
        js = b.get("judge_stats") or {}
        extra = f", judge excluded {js['excluded']}/{js['requests']}" if js else ""
        value = "no score" if b["headline"] is None else f"{b['headline']:.4f}"
        typer.echo(f"{name}: {b['headline_key']} = {value} ({b['scale']}){extra}")
    typer.echo(f"report: {out / 'report.html'}")


def gate(
    candidate: Annotated[str, typer.Option("--candidate", "-c",
                                           help="results.json, its folder, or an s3:// published evaluation")],
    deployed: Annotated[str | None, typer.Option("--deployed", "-d",
                                                 help="the deployed model's results (same forms)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the decision JSON here")] = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Compare a candidate's results with thresholds and the deployed model: promote (exit 0) or reject (exit 1)."""
    from unipic.evaluation.gate import decide

    cfg = make_config(preset, set_)
    decision = decide(_load(candidate, cfg.store), cfg.evaluation.gate, _load(deployed, cfg.store))
    text = json.dumps(decision.to_dict(), indent=2)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    typer.echo(text)
    raise typer.Exit(0 if decision.promote else 1)
