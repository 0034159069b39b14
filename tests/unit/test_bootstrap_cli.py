"""`unipic models bootstrap|info|convert|memory`, `unipic generate`, `unipic edit` on the ci preset."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from unipic.cli.main import _register, app


@pytest.fixture(scope="module")
def cli():
    if not any(getattr(g, "name", None) == "models" for g in app.registered_groups):
        _register()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


@pytest.fixture(scope="module")
def model_dir(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    cli("models", "bootstrap", "-p", "ci", "--out", str(out))
    return out


def test_info_reports_architecture(cli, model_dir):
    info = json.loads(cli("models", "info", str(model_dir), "--json"))
    assert info["pipeline"] == "UniPicKontextPipeline"
    assert info["transformer"]["class"] == "SD3KontextTransformer" and info["transformer"]["num_layers"] == 2
    assert 0.5e6 < info["components"]["transformer"]["params"] < 2e6
    assert info["components"]["vae"]["params"] == 0
    assert info["scheduler"]["shift"] == 3.0
    text = cli("models", "info", str(model_dir))
    assert "SD3KontextTransformer" in text and "num_layers=2" in text


def test_generate_writes_pngs_and_grid(cli, model_dir, tmp_path):
    out = tmp_path / "gen"
    cli(
        "generate",
        "--model",
        str(model_dir),
        "--prompt",
        "a red circle",
        "--prompt",
        "a blue square",
        "--n",
        "2",
        "--steps",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    pngs = sorted(p.name for p in out.glob("image-*.png"))
    assert pngs == [f"image-{i:03d}.png" for i in range(4)]
    assert Image.open(out / "image-000.png").size == (32, 32)
    assert Image.open(out / "grid.png").size[0] > 32
    record = json.loads((out / "images.json").read_text())
    assert record["prompts"] == ["a red circle", "a blue square"] and record["seed"] == 3
    again = tmp_path / "again"
    cli(
        "generate",
        "--model",
        str(model_dir),
        "--prompt",
        "a red circle",
        "--steps",
        "2",
        "--seed",
        "3",
        "--out",
        str(again),
    )
    assert (again / "image-000.png").read_bytes() == (out / "image-000.png").read_bytes()
    assert not (again / "grid.png").exists()


def test_edit_writes_result_and_grid_with_source(cli, model_dir, tmp_path):
    src = tmp_path / "src.png"
    im = Image.new("RGB", (32, 32), "white")
    im.paste(Image.new("RGB", (8, 8), "red"), (4, 4))
    im.save(src)
    out = tmp_path / "edit"
    cli(
        "edit",
        "--model",
        str(model_dir),
        "--image",
        str(src),
        "--instruction",
        "make the square blue",
        "--steps",
        "2",
        "--out",
        str(out),
    )
    assert [p.name for p in out.glob("image-*.png")] == ["image-000.png"]
    assert Image.open(out / "grid.png").size[0] >= 2 * 32


def test_convert_and_memory(cli, model_dir, tmp_path):
    out = tmp_path / "converted"
    cli("models", "convert", "--src", str(model_dir), "--out", str(out))
    assert (out / "config.json").is_file()
    est = json.loads(cli("models", "memory", "-p", "smoke", "--batch-size", "4", "--json"))
    assert est["params"] > 7e6 and est["total_bytes"] > est["weights_bytes"]


@pytest.mark.slow
def test_expected_failures_are_one_line(model_dir, tmp_path):
    def unipic(*args):
        return subprocess.run(
            [sys.executable, "-m", "unipic.cli.main", *args], capture_output=True, text=True, timeout=180
        )

    r = unipic("models", "bootstrap", "-p", "ci", "--out", str(model_dir))
    assert r.returncode == 2 and "not empty" in r.stderr and "Traceback" not in r.stderr
    r = unipic(
        "generate", "--model", str(model_dir), "--prompt", "x", "--size", "30", "--out", str(tmp_path / "o")
    )
    assert r.returncode == 2 and "multiple of 4" in r.stderr and "Traceback" not in r.stderr
