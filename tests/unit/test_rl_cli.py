"""`unipic train rl-edit / rl-t2i`: bad input fails with a message that names the problem and the fix."""

from __future__ import annotations

import sys

import pytest


def _unipic(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    from unipic.cli import main as cli

    monkeypatch.setattr(sys, "argv", ["unipic", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


def test_group_size_not_dividing_the_batch_names_both_numbers(monkeypatch, capsys):
    code, err = _unipic(monkeypatch, capsys, "train", "rl-t2i", "-p", "ci", "--set", "rl.grpo.group_size=3")
    assert code == 2
    assert "rollout_batch_size=8 is not a multiple of group_size=3" in err
    assert "Traceback" not in err


def test_missing_base_model_names_the_key(monkeypatch, capsys, tmp_path):
    code, err = _unipic(monkeypatch, capsys, "train", "rl-edit", "-p", "ci", "--work-dir", str(tmp_path))
    assert code == 2
    assert "rl.edit.base_model is empty" in err
