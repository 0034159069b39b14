"""Serving load test on loopback (issue #8), bounded in request count and time, 127.0.0.1 only.

Measures, against a detached `unipic.serving.server` holding a tiny model:
  1. p50/p95 latency and throughput at concurrency 1, 4, 8 (micro-batching on);
  2. the micro-batching speed-up at concurrency 8 against a server with batching off (batch size 1);
  3. the server's overhead against calling the pipeline in-process (same request, same PNG+base64 encoding,
     interleaved pair by pair against the idle server);
  4. server RSS after 10 requests against after 1,000 (leak check).
Writes benchmarks/results/serving_load.{json,md,png}. Servers and the in-process run never overlap, so they do
not compete for the CPU (the in-process calls alternate with requests to an idle server); the machine's load average is recorded because the host is shared.

    .venv/bin/python benchmarks/serving_load.py            # ~5-10 min on 2 busy cores
    .venv/bin/python benchmarks/serving_load.py --quick    # fewer requests, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unipic.config import load_config
from unipic.serving.server import start_detached, stop_detached
from unipic.serving.testing import tiny_model


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def load_level(
    url: str, name: str, concurrency: int, n: int, max_s: float, steps: int, seed0: int = 0
) -> dict:
    """`n` requests (stopping early after `max_s`) from `concurrency` threads; unique seeds, same shape."""
    lat: list[float] = []
    errors: list[str] = []
    batch: list[int] = []
    server: list[dict] = []
    deadline = time.monotonic() + max_s
    clients = [httpx.Client(base_url=url, timeout=120) for _ in range(concurrency)]

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            return
        c = clients[i % concurrency]
        body = {"instances": [{"prompt": f"a red circle {i % 5}", "seed": seed0 + i, "steps": steps}]}
        t0 = time.perf_counter()
        try:
            r = c.post(f"/v1/models/{name}:predict", json=body)
            ok = r.status_code == 200
        except httpx.HTTPError as exc:
            ok, r = False, exc
        dt = time.perf_counter() - t0
        if ok:
            lat.append(dt)
            timings = r.json()["predictions"][0]["timings"]
            batch.append(timings["batch_images"])
            server.append(timings)
        else:
            errors.append(str(getattr(r, "text", r))[:200])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(lat) / wall, 3) if wall else 0.0,
        "p50_ms": round(pct(lat, 0.5) * 1000, 2) if lat else None,
        "p95_ms": round(pct(lat, 0.95) * 1000, 2) if lat else None,
        "mean_batch_images": round(statistics.mean(batch), 2) if batch else None,
        "server_p50_ms": {
            k: round(statistics.median(t[k] for t in server), 2)
            for k in ("queue_ms", "inference_ms", "model_ms", "total_ms")
        }
        if server
        else None,
    }


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def overhead(url: str, name: str, model_dir: Path, n: int, steps: int) -> dict:
    """The same single-image request in-process and through the idle server, interleaved pair by pair so that
    the shared host's load drift hits both alike. In-process is the server's own code path minus the server:
    `UniPicPredictor.load()` (same torch threads, same warm-up) and `run_batch` (pipeline call + PNG + base64)."""
    from unipic.serving.predictor import UniPicPredictor
    from unipic.serving.schemas import parse_instance

    model = UniPicPredictor("inproc", str(model_dir), load_config("ci").serve)
    model.load()
    local, remote, server_total, server_model = [], [], [], []
    with httpx.Client(base_url=url, timeout=120) as c:
        for i in range(n + 2):
            inst = {"prompt": f"a red circle {i % 5}", "seed": i, "steps": steps, "guidance": 4.0}
            t0 = time.perf_counter()
            model.run_batch([model._resolve(parse_instance(inst))])
            t1 = time.perf_counter()
            r = c.post(f"/v1/models/{name}:predict", json={"instances": [inst]})
            t2 = time.perf_counter()
            r.raise_for_status()
            if i >= 2:  # warm-up pairs
                local.append(t1 - t0)
                remote.append(t2 - t1)
                server_total.append(r.json()["predictions"][0]["timings"]["total_ms"] / 1000)
                server_model.append(r.json()["predictions"][0]["timings"]["model_ms"] / 1000)
    model.stop()
    med = statistics.median
    return {
        "pairs": len(local),
        "in_process_p50_ms": round(med(local) * 1000, 2),
        "server_p50_ms": round(med(remote) * 1000, 2),
        "server_side_total_p50_ms": round(med(server_total) * 1000, 2),
        "server_side_model_p50_ms": round(med(server_model) * 1000, 2),
        "overhead": round(med(remote) / med(local) - 1, 4),
        "overhead_paired_median": round(med(r / l - 1 for r, l in zip(remote, local)), 4),
    }


def start(model_dir: Path, state: Path, name: str, extra: list[str]):
    sets = [
        f"serve.state_dir={state}",
        "serve.port=0",
        f"serve.model_name={name}",
        "serve.limits.max_steps=50",
        *extra,
    ]
    cfg = load_config("ci", sets).serve
    return start_detached(str(model_dir), cfg, "ci", sets)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = res["levels"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    cs = [x["concurrency"] for x in lv]
    axes[0].plot(cs, [x["p50_ms"] for x in lv], "o-", label="p50")
    axes[0].plot(cs, [x["p95_ms"] for x in lv], "s--", label="p95")
    axes[0].set(xlabel="concurrency", ylabel="latency (ms)", title="latency (batching on)")
    axes[0].legend()
    axes[1].bar([str(c) for c in cs], [x["throughput_rps"] for x in lv], label="batching on")
    nb = res["no_batching_c8"]
    axes[1].bar(["8 (batch=1)"], [nb["throughput_rps"]], color="grey", label="batching off")
    axes[1].set(
        xlabel="concurrency", ylabel="requests/s", title=f"throughput (x{res['batching_speedup_c8']} at c=8)"
    )
    axes[1].legend()
    mem = res["memory"]
    axes[2].bar(
        ["after 10", f"after {mem['requests_total']}"], [mem["rss_after_10_mb"], mem["rss_after_all_mb"]]
    )
    axes[2].set(ylabel="server RSS (MiB)", title=f"memory (growth {mem['growth_mb']:+.1f} MiB)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _model_label(model: Path | None) -> str:
    """Which preset's architecture was served (bootstrap writes unipic_model.json with it)."""
    if model is None:
        return "ci tiny model"
    card = model / "unipic_model.json"
    if card.is_file():
        info = json.loads(card.read_text())
        params = info.get("transformer_params")
        return f"random-init model with a {params / 1e6:.1f} M-parameter DiT" if params else str(model)
    return str(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", type=Path, default=None, help="model folder (default: bootstrap the ci tiny model)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    ap.add_argument("--max-seconds", type=float, default=90.0, help="time cap per level")
    ap.add_argument("--memory-requests", type=int, default=1000)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.memory_requests, args.max_seconds = 16, 100, 30.0
    work = Path(tempfile.mkdtemp(prefix="unipic-serving-bench-"))
    model_dir = args.model or tiny_model(ROOT / ".unipic" / "bench" / "serve-model")
    res: dict = {
        "model": str(model_dir),
        "steps": args.steps,
        "host": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    rec = start(model_dir, work / "a", "bench", [])
    try:
        res["overhead"] = overhead(rec.url, "bench", model_dir, max(16, args.requests // 2), args.steps)
        res["levels"] = [
            load_level(rec.url, "bench", c, args.requests, args.max_seconds, args.steps, seed0=1000 * c)
            for c in (1, 4, 8)
        ]
        load_level(rec.url, "bench", 2, 10, args.max_seconds, 1, seed0=50_000)
        before = rss_mb(rec.pid)
        mem = load_level(
            rec.url, "bench", 8, args.memory_requests - 10, 20 * args.max_seconds, 1, seed0=60_000
        )
        after = rss_mb(rec.pid)
        res["memory"] = {
            "requests_total": 10 + mem["requests"],
            "errors": mem["errors"],
            "rss_after_10_mb": round(before, 1),
            "rss_after_all_mb": round(after, 1),
            "growth_mb": round(after - before, 1),
            "throughput_rps_steps1_c8": mem["throughput_rps"],
        }
    finally:
        stop_detached(work / "a", "bench")

    rec = start(model_dir, work / "b", "bench1", ["serve.batching.enabled=false"])
    try:
        res["no_batching_c8"] = load_level(
            rec.url, "bench1", 8, args.requests, args.max_seconds, args.steps, seed0=8000
        )
    finally:
        stop_detached(work / "b", "bench1")

    res["server_overhead_c1"] = res["overhead"]["overhead"]
    c8 = next(x for x in res["levels"] if x["concurrency"] == 8)
    res["batching_speedup_c8"] = round(c8["throughput_rps"] / res["no_batching_c8"]["throughput_rps"], 2)
    res["host"]["loadavg_end"] = os.getloadavg()
    res["errors_total"] = (
        sum(x["errors"] for x in res["levels"]) + res["no_batching_c8"]["errors"] + res["memory"]["errors"]
    )

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving_load.json").write_text(json.dumps(res, indent=2))
    plot(res, args.out / "serving_load.png")
    o = res["overhead"]
    m = res["memory"]
    lines = [
        "# Serving load test (loopback)",
        "",
        (
            f"Model: {_model_label(args.model)} ({args.steps} steps, 32 px, CFG 4). Host: {res['host']['cpus']} CPUs, load "
            f"average {res['host']['loadavg_start'][0]:.1f} at start (shared machine). {res['started']}."
        ),
        "",
        "| concurrency | requests | errors | p50 ms | p95 ms | req/s | mean batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in res["levels"] + [{**res["no_batching_c8"], "concurrency": "8, batching off"}]:
        lines.append(
            f"| {x['concurrency']} | {x['requests']} | {x['errors']} | {x['p50_ms']} | {x['p95_ms']} | "
            f"{x['throughput_rps']} | {x['mean_batch_images']} |"
        )
    lines += [
        "",
        f"- micro-batching speed-up at concurrency 8: **x{res['batching_speedup_c8']}** (aim >= 1.5)",
        (
            f"- server overhead at concurrency 1, interleaved with in-process calls: p50 {o['server_p50_ms']} ms vs "
            f"{o['in_process_p50_ms']} ms in-process = **{res['server_overhead_c1'] * 100:+.1f}%** (aim <= 10%; "
            f"median of per-pair ratios {o['overhead_paired_median'] * 100:+.1f}%). Server-side p50: "
            f"{o['server_side_total_p50_ms']} ms in the server, of which {o['server_side_model_p50_ms']} ms in the "
            "pipeline call + PNG encoding"
        ),
        (
            f"- RSS after 10 requests {m['rss_after_10_mb']} MiB, after {m['requests_total']}: "
            f"{m['rss_after_all_mb']} MiB (**{m['growth_mb']:+.1f} MiB**)"
        ),
        f"- errors: {res['errors_total']}",
        "",
        "![serving load](serving_load.png)",
        "",
    ]
    (args.out / "serving_load.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
