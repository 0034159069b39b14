import pytest

from unipic.storage.local import replace_dir


def test_replace_dir_swaps_whole_folders_and_leaves_the_old_one_on_failure(tmp_path):
    final = tmp_path / "model"
    with replace_dir(final) as tmp:
        (tmp / "a.txt").write_text("v1")
    assert (final / "a.txt").read_text() == "v1"
    with pytest.raises(RuntimeError):
        with replace_dir(final) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("disk full")
    assert (final / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "a temp folder was left behind"
    with replace_dir(final) as tmp:
        (tmp / "b.txt").write_text("v2")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
