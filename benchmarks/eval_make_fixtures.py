"""Write the small benchmark fixture files under data/benchmarks/, each in its benchmark's own format, with
ShapesWorld content so the local ShapesWorld judge can answer them end to end:

- dpg/prompts/<item_id>.txt + dpg/dpg_bench.csv          (ELLA dpg_bench format)
- gedit/gedit_bench.parquet                              (HF stepfun-ai/GEdit-Bench columns, Image structs)
- imgedit/basic_edit.json + imgedit/images/ + prompts.json (ImgEdit Benchmark/Basic format)

Deterministic; re-run after changing ShapesWorld rendering: `.venv/bin/python benchmarks/eval_make_fixtures.py`.
The rubric texts in imgedit/prompts.json are short ones of our own that keep ImgEdit's dimension names and
response format; the real suite's prompts.json replaces them at cluster scale.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from unipic.data.shapes.render import render
from unipic.data.shapes.world import Scene, SceneObject

ROOT = Path(__file__).resolve().parents[1] / "data" / "benchmarks"
S = 64


def scene(*objs: tuple[str, str, tuple[int, int, int, int]], background: str = "white") -> Scene:
    return Scene(size=S, background=background,
                 objects=[SceneObject(shape=s, color=c, size="medium", bbox=b) for s, c, b in objs])


def png(sc: Scene) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(render(sc)).save(buf, format="PNG")
    return buf.getvalue()


RC = ("circle", "red", (6, 6, 24, 24))
BS = ("square", "blue", (38, 38, 56, 56))
GT = ("triangle", "green", (38, 6, 56, 24))


def dpg() -> None:
    root = ROOT / "dpg"
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    items = {
        "shapes_0001": ("a red circle left of a blue square", [
            (1, "0", "entity - whole (circle)", "Is there a red circle?"),
            (2, "0", "entity - whole (square)", "Is there a blue square?"),
            (3, "1", "attribute - color (circle, red)", "Is the circle red?"),
            (4, "1,2", "relation - spatial (circle, square, left of)", "Is the red circle left of the blue square?"),
        ]),
        "shapes_0002": ("three green triangles", [
            (1, "0", "entity - whole (triangle)", "Is there a green triangle?"),
            (2, "1", "other - count (triangle, ==3)", "Are there three green triangles?"),
        ]),
        "shapes_0003": ("a yellow square above a purple circle", [
            (1, "0", "entity - whole (square)", "Is there a yellow square?"),
            (2, "0", "entity - whole (circle)", "Is there a purple circle?"),
            (3, "1,2", "relation - spatial (square, circle, above)", "Is the yellow square above the purple circle?"),
        ]),
    }
    cols = ["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
            "tuple", "question_natural_language"]
    with (root / "dpg_bench.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for item_id, (text, qs) in items.items():
            (root / "prompts" / f"{item_id}.txt").write_text(text + "\n")
            for pid, dep, tup, q in qs:
                broad = tup.split("(")[0].split("-")[0].strip()
                w.writerow([item_id, text, "", pid, dep, broad, tup.split("(")[0].strip(), tup, q])


def gedit() -> None:
    root = ROOT / "gedit"
    root.mkdir(parents=True, exist_ok=True)
    src = scene(RC, BS)
    rows = [
        ("color_alter", "make the red circle green", True),
        ("subject-add", "add a green triangle", False),
        ("subject-remove", "remove the blue square", False),
        ("subject-replace", "replace the red circle with a square", True),
        ("motion_change", "move the blue square up", False),
        ("background_change", "make the background black", False),
    ]
    table = {"task_type": [], "key": [], "instruction": [], "instruction_language": [], "Intersection_exist": [],
             "input_image": []}
    for i, (group, instruction, inter) in enumerate(rows):
        for lang in ("en", "cn"):
            table["task_type"].append(group)
            table["key"].append(f"{i:04d}")
            table["instruction"].append(instruction if lang == "en" else f"[cn] {instruction}")
            table["instruction_language"].append(lang)
            table["Intersection_exist"].append(inter)
            table["input_image"].append({"bytes": png(src), "path": f"{i:04d}.png"})
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("task_type", pa.string()), ("key", pa.string()), ("instruction", pa.string()),
                        ("instruction_language", pa.string()), ("Intersection_exist", pa.bool_()),
                        ("input_image", image_type)])
    pq.write_table(pa.table(table, schema=schema), root / "gedit_bench.parquet")


RUBRIC = """You are a data rater grading an image edit of type {kind}. You will be given two images (before and
after editing) and the editing instruction. Score three aspects on a 5-point scale (1 = fails, 5 = perfect).
The second and third score should be no higher than the first.

Example Response Format:
Brief reasoning: A short explanation of the scores, no more than 20 words.
{d1}: A number from 1 to 5.
{d2}: A number from 1 to 5.
{d3}: A number from 1 to 5.
editing instruction is : <edit_prompt>.

Below are the images before and after editing:
"""

DIMS = {
    "add": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Coherence"),
    "remove": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"),
    "replace": ("Prompt Compliance", "Visual Naturalness", "Physical & Detail Integrity"),
    "adjust": ("Prompt Compliance", "Visual Seamlessness", "Physical & Detail Fidelity"),
    "background": ("Instruction Compliance", "Visual Seamlessness", "Physical Consistency"),
}


def imgedit() -> None:
    root = ROOT / "imgedit"
    (root / "images" / "shapes").mkdir(parents=True, exist_ok=True)
    (root / "images" / "shapes" / "0001.png").write_bytes(png(scene(RC, BS)))
    (root / "images" / "shapes" / "0002.png").write_bytes(png(scene(GT, BS)))
    items = {
        "1": {"id": "shapes/0001.png", "prompt": "make the red circle yellow", "edit_type": "adjust"},
        "2": {"id": "shapes/0001.png", "prompt": "add a green triangle", "edit_type": "add"},
        "3": {"id": "shapes/0002.png", "prompt": "remove the green triangle", "edit_type": "remove"},
        "4": {"id": "shapes/0002.png", "prompt": "replace the blue square with a circle", "edit_type": "replace"},
        "5": {"id": "shapes/0002.png", "prompt": "make the background gray", "edit_type": "background"},
    }
    (root / "basic_edit.json").write_text(json.dumps(items, indent=2) + "\n")
    prompts = {k: RUBRIC.format(kind=k, d1=d[0], d2=d[1], d3=d[2]) for k, d in DIMS.items()}
    (root / "prompts.json").write_text(json.dumps(prompts, indent=2) + "\n")


if __name__ == "__main__":
    dpg()
    gedit()
    imgedit()
    print(f"fixtures written under {ROOT}")
