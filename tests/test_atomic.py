"""Atomic folder and file writes: a crash leaves the previous version whole, and results get normal permissions."""

import os
import stat

import pytest

from modeling_dhrd.atomic import atomic_directory, atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_crash_inside_leaves_the_previous_folder_whole_and_no_temporary_folder(tmp_path):
    target = tmp_path / "checkpoint"
    with atomic_directory(target) as folder:
        (folder / "weights").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(target, overwrite=True) as folder:
        (folder / "weights").write_text("v2, half written")
        raise RuntimeError("killed mid-save")
    assert (target / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path):
    target = tmp_path / "checkpoint"
    target.mkdir()
    with pytest.raises(FileExistsError), atomic_directory(target):
        pass
    with atomic_directory(target, overwrite=True) as folder:
        (folder / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"


def test_results_get_the_permissions_mkdir_and_open_would_give(tmp_path, umask_022):
    with atomic_directory(tmp_path / "checkpoint") as folder:
        (folder / "config.json").write_text("{}")
    atomic_write_text(tmp_path / "README.md", "card")
    assert _mode(tmp_path / "checkpoint") == 0o755  # not mkdtemp's owner-only 0700
    assert _mode(tmp_path / "README.md") == 0o644  # not mkstemp's 0600
    assert (tmp_path / "README.md").read_text() == "card"
