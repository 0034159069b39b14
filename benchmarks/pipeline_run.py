"""Wall time of a whole pipeline run per stage, and orchestration overhead as a share of the total.

Runs `unipic run --preset P --no-cache` in a subprocess, keeps its log, and reads the timestamps kfp.local and
the KFP executor print: a task's *wall* is "Executing task" -> "finished"; its *work* is the executor's "Got
executor_input" -> "Wrote executor output" (the component function: imports, the stage, artifact writing).
Overhead = total wall - sum of work (process start-up, kfp's executor, scheduling, post-processing).

    .venv/bin/python benchmarks/pipeline_run.py --preset smoke
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
ORCH = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task '([^']+)'|Task '([^']+)' finished)")
EXEC = re.compile(r"\[KFP Executor (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO\]: (Got executor_input|Wrote executor output)")
RESULTS = Path(__file__).resolve().parent / "results"


def _t(clock: str, day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock)).timestamp()


def parse_log(text: str, day: dt.date) -> dict[str, dict[str, float]]:
    """Task timings from a run log. `day` is the run's start date: kfp.local prints clock times only, so a
    clock that goes backwards by more than 12 h is the next day (runs that cross midnight)."""
    tasks: dict[str, dict[str, float]] = {}
    current = None
    last = None
    for raw in text.splitlines():
        line = ANSI.sub("", raw).strip()
        if m := ORCH.match(line):
            t = _t(m.group(1), day)
            if last is not None and t < last - 12 * 3600:
                day += dt.timedelta(days=1)
                t = _t(m.group(1), day)
            last = t
            if m.group(3):
                current = m.group(3)
                tasks[current] = {"start": t}
            elif m.group(4) in tasks:
                tasks[m.group(4)]["end"] = t
        elif (m := EXEC.search(line)) and current:
            ts = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            tasks[current]["work_start" if m.group(2).startswith("Got") else "work_end"] = ts
    return tasks


def summarize(tasks: dict[str, dict[str, float]], total_s: float) -> dict:
    rows = []
    for name, t in tasks.items():
        wall = t.get("end", t["start"]) - t["start"]
        work = t.get("work_end", t["start"]) - t.get("work_start", t["start"])
        rows.append({"task": name, "wall_s": round(wall, 2), "work_s": round(work, 2)})
    work_total = sum(r["work_s"] for r in rows)
    return {"total_s": round(total_s, 1), "sum_task_wall_s": round(sum(r["wall_s"] for r in rows), 1),
            "sum_work_s": round(work_total, 1), "overhead_s": round(total_s - work_total, 1),
            "overhead_share": round((total_s - work_total) / total_s, 4) if total_s else None, "tasks": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="ci")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--from-log", type=Path, help="summarise an existing run log instead of running (total = "
                    "first task start to last task end)")
    ap.add_argument("--start-date", type=dt.date.fromisoformat, help="with --from-log: the run's start date")
    args = ap.parse_args()
    if args.from_log:
        tasks = parse_log(args.from_log.read_text(), args.start_date or dt.date.today())
        ends = [t["end"] for t in tasks.values() if "end" in t]
        total = max(ends) - min(t["start"] for t in tasks.values()) if ends else 0.0
        write(summarize(tasks, total), args.preset, args.set, args.start_date or dt.date.today(), None, None)
        return
    cmd = [sys.executable, "-m", "unipic.cli.main", "run", "--preset", args.preset, "--no-cache"]
    for s in args.set:
        cmd += ["--set", s]
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / f"pipeline_{args.preset}.log"
    load_start = os.getloadavg()
    start = time.time()
    with log_path.open("w") as out:  # streamed, so a long run can be followed with tail -f
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True)
    total = time.time() - start
    log = log_path.read_text()
    if proc.returncode != 0:
        sys.exit(f"run failed (rc {proc.returncode}); log in {RESULTS / f'pipeline_{args.preset}.log'}")
    day = dt.date.fromtimestamp(start)
    write(summarize(parse_log(log, day), total), args.preset, args.set, day, load_start, os.getloadavg())


def write(res: dict, preset: str, overrides: list[str], day: dt.date, load_start, load_end) -> None:
    res.update(preset=preset, overrides=overrides, date=day.isoformat(), cpus=os.cpu_count(),
               load_avg_start=load_start, load_avg_end=load_end)
    (RESULTS / f"pipeline_{preset}.json").write_text(json.dumps(res, indent=2))
    lines = [f"# Pipeline run, preset `{preset}` ({res['date']})", "",
             f"Total {res['total_s']} s; stage work {res['sum_work_s']} s; orchestration overhead "
             f"{res['overhead_s']} s ({100 * res['overhead_share']:.1f} % of the total). {res['cpus']} CPUs"
             + (f", load average {load_start[0]:.1f} at the start and {load_end[0]:.1f} at the end."
                if load_end else "."),
             "",
             "| task | wall (s) | work (s) |", "|---|---|---|"]
    lines += [f"| {r['task']} | {r['wall_s']} | {r['work_s']} |" for r in res["tasks"]]
    (RESULTS / f"pipeline_{preset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
