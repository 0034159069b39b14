"""`unipic serve` commands that need no model: errors name the fix, status/stop of a server that is not running,
and `manifests` writing the committed files."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unipic.cli.main import _register, app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner():
    if not any(getattr(g, "name", None) == "serve" for g in app.registered_groups):
        _register()
    return CliRunner()


def test_status_and_stop_when_nothing_runs(runner, tmp_path):
    state = ["--set", f"serve.state_dir={tmp_path}"]
    res = runner.invoke(app, ["serve", "status", *state])
    assert res.exit_code == 1 and "not running" in res.stdout
    res = runner.invoke(app, ["serve", "stop", "--name", "ghost", *state])
    assert res.exit_code == 0 and "ghost: not running" in res.stdout


def test_stale_pid_file_of_another_process_is_not_killed(runner, tmp_path):
    pid_dir = tmp_path / "serve"
    pid_dir.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (pid_dir / "unipic.pid").write_text(f"{sleeper.pid}\n")
        res = runner.invoke(app, ["serve", "stop", "--set", f"serve.state_dir={tmp_path}"])
        assert "stale pid file removed" in res.stdout and sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_serve_without_model_says_how(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "unipic.cli.main", "serve"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2 and "--model" in res.stderr


def test_manifests_command_writes_the_committed_files(runner, tmp_path):
    res = runner.invoke(app, ["serve", "manifests", "--preset", "base", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for f in (ROOT / "manifests" / "serving").glob("*.yaml"):
        assert (tmp_path / f.name).read_text() == f.read_text()
