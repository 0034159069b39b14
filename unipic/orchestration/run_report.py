"""The run report: one HTML page linking every stage's report, metrics and image grids.

Built from the run's artifact tree (kfp.local: `<pipeline_root>/<job name>/<task>/<output>` with each task's
`executor_output.json`), so it needs nothing from the stages beyond their KFP outputs: HTML/Markdown
artifacts are linked, Metrics and artifact metadata are tabulated, PNGs are shown as thumbnails.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unipic.storage.manifest import atomic_write_bytes

REPORT_NAME = "run_report.html"
_MAX_IMAGES_PER_TASK = 6


@dataclass
class TaskSummary:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)
    markdown: list[tuple[str, str]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


def _classify(task: TaskSummary, art_name: str, f: Path) -> None:
    """KFP artifact files often have no suffix: sniff HTML and Markdown reports by content."""
    if f.suffix == ".png":
        task.images.append(f)
    elif f.suffix == ".html":
        task.reports.append(f)
    elif f.suffix in ("", ".md") and f.stat().st_size < 20_000_000:
        head = f.read_bytes()[:512].lstrip()
        if head.startswith((b"<!doctype", b"<!DOCTYPE", b"<html", b"<HTML")):
            task.reports.append(f)
        elif f.suffix == ".md" or head.startswith(b"#"):
            task.markdown.append((art_name, f.read_text(errors="replace")))


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


def collect_tasks(job_dir: Path) -> list[TaskSummary]:
    """Every task that wrote an executor output, in the order the tasks finished."""
    outs = sorted(job_dir.rglob("executor_output.json"), key=lambda p: p.stat().st_mtime)
    tasks = []
    for out in outs:
        data = json.loads(out.read_text())
        task = TaskSummary(name=str(out.parent.relative_to(job_dir)), params=data.get("parameterValues", {}))
        for name, group in data.get("artifacts", {}).items():
            arts = group.get("artifacts", [])
            task.artifacts[name] = [{"uri": a.get("uri", ""), "metadata": a.get("metadata", {})} for a in arts]
            for art in arts:
                uri = art.get("uri", "")
                for f in _files(Path(uri)) if uri.startswith("/") else []:
                    _classify(task, name, f)
        tasks.append(task)
    return tasks


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return html.escape(text if len(text) < 160 else text[:157] + "...")


def _rel(path: Path, base: Path) -> str:
    return html.escape(os.path.relpath(path, base))


def _linkable(report: Path, task: str, base: Path) -> Path:
    """Browsers show a suffix-less file as text: give HTML reports an .html name next to the run report."""
    if report.suffix == ".html":
        return report
    target = base / "_reports" / f"{task.replace('/', '_')}-{report.name}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(report.read_bytes())
    return target


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def render(tasks: list[TaskSummary], base: Path, title: str, header: dict[str, Any]) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}"
             "img{image-rendering:pixelated;width:160px;margin:2px;border:1px solid #ddd}"
             "h2{border-bottom:2px solid #444;margin-top:1.5em}.md img{width:auto;max-width:100%}"
             "details{margin:.5em 0;padding:.3em .8em;border-left:3px solid #9bc}</style>",
             f"<h1>{html.escape(title)}</h1><table>"]
    parts += [f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in header.items()]
    parts.append("</table><h2>Stages</h2><table><tr><th>task</th><th>outputs</th><th>reports</th></tr>")
    for t in tasks:
        links = " ".join(f"<a href='{_rel(_linkable(r, t.name, base), base)}'>{html.escape(r.name)}</a>"
                         for r in t.reports) or "-"
        outs = ", ".join(list(t.params) + list(t.artifacts)) or "-"
        parts.append(f"<tr><td><a href='#{html.escape(t.name)}'>{html.escape(t.name)}</a></td>"
                     f"<td>{html.escape(outs)}</td><td>{links}</td></tr>")
    parts.append("</table>")
    for t in tasks:
        parts.append(f"<h2 id='{html.escape(t.name)}'>{html.escape(t.name)}</h2>")
        rows = [(k, v) for k, v in t.params.items()]
        for name, arts in t.artifacts.items():
            for art in arts:
                rows += [(f"{name}.{k}", v) for k, v in art["metadata"].items() if k != "display_name"]
        if rows:
            parts.append("<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(v)}</td></tr>"
                                             for k, v in rows) + "</table>")
        parts += [f"<a href='{_rel(i, base)}'><img src='{_rel(i, base)}' title='{html.escape(i.name)}'></a>"
                  for i in t.images[:_MAX_IMAGES_PER_TASK]]
        for art_name, text in t.markdown:
            parts.append(f"<details open><summary>{html.escape(art_name)}</summary><div class='md'>"
                         f"{_markdown(text)}</div></details>")
    return "\n".join(parts)


def write_run_report(job_dir: str | Path, *, title: str = "UniPic 2.0 run", header: dict[str, Any] | None = None,
                     out: str | Path | None = None) -> Path:
    job = Path(job_dir)
    target = Path(out) if out else job / REPORT_NAME
    page = render(collect_tasks(job), target.parent, title, header or {})
    atomic_write_bytes(target, page.encode())
    return target


def summarize_run(job_dir: str | Path) -> dict[str, Any]:
    """What a person wants after `unipic run`: the report, the gate's verdict, the endpoint, the final model."""
    job = Path(job_dir)
    tasks = {t.name: t for t in collect_tasks(job)}

    def param(task: str) -> Any:
        return tasks[task].params.get("Output") if task in tasks else None

    return {
        "run_report": str(job / REPORT_NAME) if (job / REPORT_NAME).is_file() else None,
        "stages": list(tasks),
        "dataset": param("curate-dataset"),
        "final_model": next((param(t) for t in ("train-metaquery-2", "rl-t2i", "rl-edit", "pretrain-kontext")
                             if param(t)), None),
        "gate": param("gate-model"),
        "endpoint": param("deploy-model") or None,
    }
