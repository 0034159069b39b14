"""Each runtime image's requirements resolve with pip (no Docker engine here, so a dry-run resolve)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"


def _resolve(kind: str, tmp_path: Path) -> dict[str, str]:
    report = tmp_path / f"{kind}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", str(report),
         "-r", str(CONTAINERS / f"requirements-{kind}.txt")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower(): i["metadata"]["version"]
            for i in json.loads(report.read_text())["install"]}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["curate", "train", "serve"])
def test_image_requirements_resolve(kind, tmp_path):
    pins = _resolve(kind, tmp_path)
    assert pins["protobuf"].split(".")[0] == "6", "protobuf must stay <7 (kfp, kserve)"
    if kind == "curate":
        assert "torch" not in pins, "the curation image must not carry torch (feast imports it: seconds per task)"
        assert {"feast", "great-expectations", "dvc"} <= set(pins)
    if kind == "train":
        assert {"torch", "deepspeed", "diffusers", "kfp"} <= set(pins)
    if kind == "serve":
        assert {"kserve", "torch", "diffusers"} <= set(pins)


def test_every_dockerfile_has_its_requirements():
    for dockerfile in CONTAINERS.glob("Dockerfile.*"):
        kind = dockerfile.suffix.lstrip(".")
        assert (CONTAINERS / f"requirements-{kind}.txt").is_file()
        text = dockerfile.read_text()
        assert f"requirements-{kind}.txt" in text and "ARG BASE_IMAGE" in text and "USER 1001" in text
