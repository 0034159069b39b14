"""Feast at 100k samples: write signals, apply, materialize into SQLite, online reads, historical retrieval and
training-set selection.

    .venv/bin/python benchmarks/curation_feast.py [--n 100000]

Writes benchmarks/results/curation_feast.{json,md}. Local scale: file (dask) offline store + SQLite online store,
the configuration the curation stage uses on a laptop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")

from unipic.config.curation import FeaturesConfig  # noqa: E402
from unipic.data.curation.output import index_frame  # noqa: E402


def synthetic_index(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    kinds = np.where(rng.random(n) < 0.5, "t2i", "edit")
    rows = {
        "sample_id": [f"s{i:07d}" for i in range(n)], "kind": kinds, "task": rng.choice(["a", "b", "c"], n),
        "text": ["a red circle above a blue square"] * n, "shard": "shards/t2i-000000.tar", "width": 64,
        "height": 64, "sha256": [f"{i:064x}" for i in range(n)], "split": "train",
        "content_sha256": [f"{i:064x}" for i in range(n)], "source_sha256": None, "phash": "0" * 48,
        "sharpness": rng.uniform(0, 5000, n), "colourfulness": rng.uniform(0, 120, n),
        "exposure": rng.uniform(0, 1, n), "clipped_fraction": rng.uniform(0, 1, n),
        "agreement": rng.uniform(0, 1, n), "change_ratio": np.where(kinds == "edit", rng.uniform(0, 1, n), np.nan),
    }
    return index_frame(pd.DataFrame(rows).to_dict("records"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        print(f"{name}: {timings[name]:.2f} s", flush=True)
        return out

    index = synthetic_index(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = FeaturesConfig(state_dir=Path(tmp) / "features", selection={"agreement": [0.5, None]})
        from unipic.features import FeatureStoreClient, select_training_set  # feast import: seconds

        client = FeatureStoreClient(cfg)
        timed("init (feast import + FeatureStore)", lambda: client.store)
        now = datetime.now(timezone.utc)
        timed("write_signals", lambda: client.write_signals(index, "bench", event_time=now - timedelta(minutes=1)))
        timed("apply", client.apply)
        timed("materialize", lambda: client.materialize(start=now - timedelta(days=1)))
        ids = index["sample_id"].sample(1000, random_state=0).tolist()
        timed("online_1000", lambda: client.online(ids))
        ent = pd.DataFrame({"sample_id": index["sample_id"], "event_timestamp": pd.Timestamp(now)})
        hist = timed("historical_all", lambda: client.historical(ent))
        sel, dropped = timed("select_training_set", lambda: select_training_set(cfg, index["sample_id"], client=client))
    assert hist["has_features"].all() and len(sel) == int((index["agreement"] >= 0.5).sum())
    result = {"n": args.n, "seconds": timings, "selected": len(sel), "dropped": dropped,
              "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_avg": os.getloadavg()}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "curation_feast.json").write_text(json.dumps(result, indent=2))
    md = [f"# Feast at {args.n:,} samples (file offline store + SQLite online store)", "",
          f"{result['machine']}, load average {result['load_avg'][0]:.1f}; max RSS {result['max_rss_mb']:.0f} MB.", "",
          "| step | seconds | per second |", "|---|---|---|"]
    per = {"write_signals": args.n, "materialize": args.n, "online_1000": 1000, "historical_all": args.n,
           "select_training_set": args.n}
    for k, v in timings.items():
        md.append(f"| {k} | {v:.2f} | {per[k] / v:,.0f} rows/s |" if k in per else f"| {k} | {v:.2f} | |")
    md += ["", f"Selection (agreement >= 0.5) kept {len(sel):,} of {args.n:,}; every row came back from the "
           "historical retrieval (joined back onto the requested ids)."]
    (out / "curation_feast.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
