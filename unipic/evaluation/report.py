"""The human report: one HTML file (images embedded, so it works as a KFP HTML artifact) with per-benchmark
tables, image grids (prompt under each image, the judge's verdict next to it) and a comparison table against
the previous model and the paper's reported numbers."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from PIL import Image

from unipic.evaluation.generation import image_path
from unipic.evaluation.reference import load_reference

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:10px}.cell{width:150px;font-size:11px}
.cell img{width:64px;height:64px;image-rendering:pixelated;border:1px solid #ddd}
.ok{color:#080;font-weight:bold}.bad{color:#b00;font-weight:bold}.note{color:#666;font-size:12px}"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.3f}"
    return html.escape(str(v)) if v is not None else "n/a"


def _img(path: Path | Image.Image, size: int = 64) -> str:
    im = path if isinstance(path, Image.Image) else Image.open(path)
    im = im.convert("RGB")
    if max(im.size) > 256:
        im.thumbnail((256, 256))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _breakdown(name: str, m: dict[str, Any]) -> str:
    parts = []
    if "tasks" in m:
        extra = [(h, m[k]) for h, k in (("strict", "strict_tasks"), ("arrangement", "arrangement_tasks"),
                                         ("arrangement, prompts swapped", "arrangement_control_tasks")) if m.get(k)]
        rows = [[t, v, *[d.get(t) for _, d in extra]] for t, v in m["tasks"].items()]
        parts.append(_table(["task", "accuracy", *[h for h, _ in extra]], rows))
    if "groups" in m:
        parts.append(_table(["group", "SC", "PQ", "O", "n", "excluded"],
                            [[g, d["sc"], d["pq"], d["o"], d["n"], d["excluded"]] for g, d in m["groups"].items()]))
    if "by_split" in m:
        keys = sorted({k for d in m["by_split"].values() for k in d})
        parts.append(_table(["split", *keys], [[sp, *[d.get(k) for k in keys]] for sp, d in m["by_split"].items()]))
    if "exact" in m:
        parts.append(_table(["category (exact scorer)", "success", "instruction", "preservation", "overall"],
                            [[c, d["success"], d["instruction"], d["preservation"], d["overall"]]
                             for c, d in m["exact"].items()]))
    if "types" in m:
        parts.append(_table(["edit type", "score (1-5)"], [[t, v] for t, v in m["types"].items()]))
    if "l1" in m:
        parts.append(_table(["category (L1)", "score"], [[t, v] for t, v in m["l1"].items()]))
    if m.get("missing_images"):
        parts.append(f"<p class='bad'>{len(m['missing_images'])} missing image(s): "
                     f"{html.escape(', '.join(m['missing_images'][:10]))}</p>")
    return "".join(parts)


def _verdict(r: dict[str, Any]) -> str:
    if "correct" in r:
        cls = "ok" if r["correct"] else "bad"
        why = r.get("reason") or "all clauses hold"
        strict = f" · strict {'✓' if r.get('strict') else '✗'}" if "strict" in r else ""
        why_html = html.escape(why).replace("\n", "<br>")
        return f"<span class='{cls}'>{'correct' if r['correct'] else 'wrong'}</span>{strict}<br>{why_html}"
    if "o" in r:
        if r["o"] is None:
            return f"<span class='bad'>excluded ({html.escape(', '.join(map(str, r.get('judge_errors', []))))})</span>"
        exact = (f"<br>exact: {'✓' if r['exact_success'] else '✗'} {html.escape(r['exact_reason'][:80])}"
                 if "exact_success" in r else "")
        return (f"SC {r['sc']:.0f} · PQ {r['pq']:.0f} · <b>O {r['o']:.2f}</b><br>"
                f"{html.escape(str(r.get('reasoning', ''))[:120])}{exact}")
    if "scores" in r:
        if r["scores"] is None:
            return "<span class='bad'>excluded</span>"
        return f"{' / '.join(f'{s:.0f}' for s in r['scores'])}<br>{html.escape(str(r.get('reasoning', ''))[:120])}"
    if "score" in r:
        return f"score {r['score']:.2f}"
    return ""


def _grid(bdir: Path, rows: list[dict[str, Any]], max_items: int) -> str:
    cells, seen = [], set()
    for r in rows:
        if len(seen) >= max_items and r["item_id"] not in seen:
            continue
        seen.add(r["item_id"])
        p = image_path(bdir, r["item_id"], r.get("k", 0))
        if not p.is_file():
            continue
        src = ""
        if "sc" in r or "scores" in r:
            s = bdir / "sources" / f"{r['item_id']}.png"
            src = _img(s) + " → " if s.is_file() else ""
        cells.append(f"<div class='cell'>{src}{_img(p)}<br><i>{html.escape(r.get('prompt', ''))}</i><br>"
                     f"{_verdict(r)}</div>")
    return f"<div class='grid'>{''.join(cells)}</div>"


def _short_verdict(r: dict[str, Any]) -> str:
    if "correct" in r:
        return "OK" if r["correct"] else "WRONG: " + (r.get("reason") or "").split("\n")[0]
    if "o" in r:
        return "excluded" if r["o"] is None else f"SC {r['sc']:.0f} PQ {r['pq']:.0f} O {r['o']:.1f}"
    if "scores" in r:
        return "excluded" if r["scores"] is None else "/".join(f"{x:.0f}" for x in r["scores"])
    return f"{r['score']:.2f}" if "score" in r else ""


def write_grid_png(bdir: Path, rows: list[dict[str, Any]], max_items: int) -> Path | None:
    """`<benchmark>/grid.png`: the first images with the prompt and the verdict under each (edits: source | output)."""
    import numpy as np

    from unipic.data.shapes.grid import image_grid, save_png, side_by_side

    tiles, captions, seen = [], [], set()
    for r in rows:
        if r["item_id"] in seen or len(seen) >= max_items:
            continue
        p = image_path(bdir, r["item_id"], r.get("k", 0))
        if not p.is_file():
            continue
        seen.add(r["item_id"])
        img = np.asarray(Image.open(p).convert("RGB"))
        src = bdir / "sources" / f"{r['item_id']}.png"
        if src.is_file():
            s = np.asarray(Image.open(src).convert("RGB").resize(img.shape[1::-1]))
            img = side_by_side(s, img)
        tiles.append(img)
        captions.append(f"{r.get('prompt', '')} | {_short_verdict(r)}")
    if not tiles:
        return None
    scale = max(1, 128 // max(t.shape[0] for t in tiles))
    return save_png(image_grid(tiles, captions, cols=6, scale=scale), bdir / "grid.png")


def comparison_rows(results: dict[str, Any], previous: dict[str, Any] | None, reference: dict[str, Any]
                    ) -> list[list[Any]]:
    cols = reference.get("default_comparison", [])
    rows = []
    for name, b in results["benchmarks"].items():
        prev = (previous or {}).get("benchmarks", {}).get(name, {}).get("headline")
        cur = b["headline"]
        delta = cur - prev if isinstance(cur, (int, float)) and isinstance(prev, (int, float)) else None
        key = b.get("reference_key")
        paper = [reference["models"].get(c, {}).get(key) if key else None for c in cols]
        rows.append([f"{name} ({b['scale']})", cur, prev, delta, *paper])
    return rows


def write_report(path: Path, results: dict[str, Any], out_dir: Path, *, previous: dict[str, Any] | None = None,
                 reference_path: str | Path | None = None, max_items: int = 24) -> None:
    reference = load_reference(reference_path)
    cols = reference.get("default_comparison", [])
    parts = [f"<html><head><meta charset='utf-8'><title>Evaluation: {html.escape(str(results['model']))}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Evaluation of {html.escape(str(results['model']))}</h1>",
             f"<p class='note'>{html.escape(results['created_at'])} · config {results['config_hash']}</p>",
             "<h2>Comparison</h2>",
             _table(["benchmark", "this model", "previous", "Δ", *[f"paper: {c}" for c in cols]],
                    comparison_rows(results, previous, reference)),
             f"<p class='note'>Paper numbers: arXiv {html.escape(reference['source']['arxiv'])}, "
             f"{html.escape(reference['source']['table'])}. ShapesWorld twins (shapes_*) are not comparable with "
             "the paper's GenEval/GEdit numbers; they are shown on the same scale for orientation only. "
             f"Previous model: {html.escape(str(results.get('previous_model')))}.</p>"]
    for name, b in results["benchmarks"].items():
        bdir = out_dir / name
        rows_file = bdir / "rows.jsonl"
        rows = [json.loads(x) for x in rows_file.read_text().splitlines()] if rows_file.is_file() else []
        write_grid_png(bdir, rows, max_items)
        js = b.get("judge_stats")
        judge_line = (f"judge {html.escape(b['judge'].get('model', ''))}: {js['requests']} calls, {js['excluded']} "
                      f"excluded {html.escape(json.dumps({k: v for k, v in js['failures'].items() if v}))}, "
                      f"{js['retries']} retries" if js else html.escape(b["judge"].get("name", "")))
        parts += [f"<h2>{html.escape(name)}: {b['headline_key']} = {_fmt(b['headline'])} ({b['scale']})</h2>",
                  f"<p class='note'>{b['items']} items × {b['images_per_prompt']} images; {judge_line}; "
                  f"generation {json.dumps(b['generation'])}</p>",
                  _breakdown(name, b["metrics"]), _grid(bdir, rows, max_items)]
    parts.append("</body></html>")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
