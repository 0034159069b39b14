"""The run report lists every task, its metadata and images, and links stage reports relatively."""

import json
from types import SimpleNamespace

from components.run_report.component import write_run_report


def _task(job, name, params, artifacts):
    d = job / name
    d.mkdir(parents=True)
    out = {"parameterValues": params, "artifacts": {}}
    for art_name, (meta, files) in artifacts.items():
        a = d / art_name
        a.mkdir()
        for fname, content in files.items():
            (a / fname).write_bytes(content)
        out["artifacts"][art_name] = {"artifacts": [{"name": art_name, "uri": str(a), "metadata": meta}]}
    (d / "executor_output.json").write_text(json.dumps(out))


def test_report_lists_tasks_metadata_and_images(tmp_path):
    job = tmp_path / "root" / "unipic2-job"
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    _task(job, "generate-shapes", {"Output": "s3://d/x"}, {"dataset": ({"dataset_hash": "abc123"}, {})})
    _task(job, "evaluate", {}, {"report": ({"geneval_overall": 0.5}, {"index.html": b"<p>", "grid.png": png})})
    status = SimpleNamespace(state="SUCCEEDED", error_message=None)
    path = write_run_report.python_func(preset="ci", overrides=[], pipeline_root=str(tmp_path / "root"),
                                        job_name="unipic2-job", status=status)
    page = open(path).read()
    assert "generate-shapes" in page and "evaluate" in page and "SUCCEEDED" in page
    assert "abc123" in page and "geneval_overall" in page
    assert "href='evaluate/report/index.html'" in page and "evaluate/report/grid.png" in page


def test_suffixless_reports_are_sniffed(tmp_path):
    job = tmp_path / "root" / "job"
    _task(job, "pretrain", {}, {"report": ({}, {"report": b"# Pre-training\n\n- steps: 3\n"}),
                               "validation": ({}, {"validation": b"<!doctype html><p>gx</p>"})})
    status = SimpleNamespace(state="FAILED", error_message="boom")
    page = open(write_run_report.python_func(preset="ci", overrides=[], pipeline_root=str(tmp_path / "root"),
                                             job_name="job", status=status)).read()
    assert "<h1>Pre-training</h1>" in page and "boom" in page
    linked = job / "_reports" / "pretrain-validation.html"
    assert linked.read_bytes().startswith(b"<!doctype html>") and "_reports/pretrain-validation.html" in page
