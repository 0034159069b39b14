"""The CLI surface: help everywhere, expected failures print one clear line (exit 2, no traceback)."""

import json
import subprocess
import sys


def _unipic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unipic.cli.main", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_groups():
    out = _unipic("--help")
    assert out.returncode == 0
    assert "config" in out.stdout


def test_every_group_has_help():
    from unipic.cli import registry

    for name, _ in registry.GROUPS + registry.COMMANDS:
        out = _unipic(name, "--help")
        assert out.returncode == 0, (name, out.stderr)
        assert "Usage" in out.stdout


def test_config_show_prints_hash():
    out = _unipic("config", "show", "-p", "ci", "--set", "shapes.n_t2i=9")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["config"]["shapes"]["n_t2i"] == 9 and len(data["config_hash"]) == 16


def test_config_error_is_one_clear_message():
    out = _unipic("config", "show", "--set", "shapes.bogus=1")
    assert out.returncode == 2
    assert "unknown key 'shapes.bogus'" in out.stderr
    assert "Traceback" not in out.stderr
