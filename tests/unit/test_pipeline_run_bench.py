import datetime as dt
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "pipeline_run", Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline_run.py")
pipeline_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pipeline_run)

LOG = """23:59:50.000 - INFO - Executing task 'pretrain'
[KFP Executor 2026-11-29 23:59:51,000 INFO]: Got executor_input
[KFP Executor 2026-11-30 00:00:05,000 INFO]: Wrote executor output
00:00:06.000 - INFO - Task 'pretrain' finished with status SUCCESS
00:00:06.000 - INFO - Executing task 'rl-edit'
00:00:16.500 - INFO - Task 'rl-edit' finished with status SUCCESS
"""


def test_a_run_that_crosses_midnight_keeps_positive_walls():
    tasks = pipeline_run.parse_log(LOG, dt.date(2026, 11, 29))
    res = pipeline_run.summarize(tasks, total_s=30.0)
    rows = {r["task"]: r for r in res["tasks"]}
    assert rows["pretrain"]["wall_s"] == 16.0 and rows["pretrain"]["work_s"] == 14.0
    assert rows["rl-edit"]["wall_s"] == 10.5 and rows["rl-edit"]["work_s"] == 0.0
    assert res["overhead_s"] == 16.0
