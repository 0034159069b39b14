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


def test_full_disk_is_one_clear_message_and_leaves_nothing(tmp_path):
    """ENOSPC mid-generation: exit 2, one line naming the file, no traceback, no partial dataset."""
    code = (
        "import errno, sys\n"
        "import unipic.data.generate as g\n"
        "def full(*a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', '/full/disk/t2i-000000.tar')\n"
        "g.build_dataset = full\n"
        "from unipic.cli.main import main\n"
        "sys.argv = ['unipic', 'data', 'generate', '--task', 't2i', '--n', '2', '--out', sys.argv[1]]\n"
        "main()\n"
    )
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "no space left on the device writing /full/disk/t2i-000000.tar" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_other_os_errors_keep_their_traceback():
    from unipic.cli.main import disk_error_message

    assert disk_error_message(OSError(2, "No such file or directory", "x")) is None
