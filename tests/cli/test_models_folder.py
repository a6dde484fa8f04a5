"""``slmdesk models folder [PATH] [--move]``, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.common import paths
from tests.cli.clirun import assert_clean_failure, assert_no_noise, run_cli

JSON_FIELDS = {"path", "free_bytes", "models", "bytes"}


@pytest.fixture
def other_folder(tmp_path: Path) -> Iterator[Path]:
    """An empty folder, on another filesystem (/dev/shm) when the machine has one."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="slmdesk-cli-move-", dir=shm))
    else:
        folder = tmp_path / "other"
        folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _json(*args: str) -> dict:
    out = run_cli(*args, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert_no_noise(out)
    return json.loads(out.stdout)


def test_the_folder_is_shown_with_its_free_space_and_models(tiny_model: Path) -> None:
    empty = _json("models", "folder")
    assert set(empty) == JSON_FIELDS
    assert empty["path"] == str(paths.models_dir())
    assert empty["models"] == 0 and empty["bytes"] == 0
    assert isinstance(empty["free_bytes"], int) and empty["free_bytes"] > 0
    assert run_cli("models", "import", str(tiny_model)).returncode == 0
    one = _json("models", "folder")
    assert one["models"] == 1 and one["bytes"] == tiny_model.stat().st_size
    text = run_cli("models", "folder")
    assert text.returncode == 0 and str(paths.models_dir()) in text.stdout
    assert "1 model(s)" in text.stdout


def test_move_moves_every_model_and_lists_them_there(tiny_model: Path, other_folder: Path) -> None:
    assert run_cli("models", "import", str(tiny_model)).returncode == 0
    old = paths.models_dir()
    moved = _json("models", "folder", str(other_folder), "--move")
    assert set(moved) >= JSON_FIELDS
    assert moved["path"] == str(other_folder.resolve())
    assert moved["models"] == 1 and moved["bytes"] == tiny_model.stat().st_size
    listed = _json("models", "list")
    assert [Path(m["path"]).parent for m in listed["models"]] == [other_folder.resolve()]
    assert listed["models_dir"] == str(other_folder.resolve())
    assert not list(old.glob("*.gguf"))
    assert _json("models", "folder")["path"] == str(other_folder.resolve())


def test_choosing_a_folder_keeps_the_stored_models_listed(tiny_model: Path, tmp_path: Path) -> None:
    assert run_cli("models", "import", str(tiny_model)).returncode == 0
    old = paths.models_dir()
    target = tmp_path / "new-models"
    target.mkdir()
    out = run_cli("models", "folder", str(target))
    assert out.returncode == 0, out.stderr
    assert "stay there" in out.stdout
    listed = _json("models", "list")
    assert [Path(m["path"]).parent for m in listed["models"]] == [old]
    assert listed["models_dir"] == str(target.resolve())
    now = _json("models", "folder")
    assert (now["path"], now["models"], now["bytes"]) == (str(target.resolve()), 0, 0)


def test_bad_folders_give_one_sentence(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("models", "folder", str(tmp_path / "missing")), "does not exist")
    inside = paths.models_dir() / "sub"
    inside.mkdir()
    assert_clean_failure(run_cli("models", "folder", str(inside), "--move"), "inside")
    usage = run_cli("models", "folder", "--move")
    assert usage.returncode == 2 and "needs PATH" in usage.stderr
    assert paths.chosen_models_dir() is None


def test_a_chosen_folder_that_is_gone_is_a_sentence_and_can_be_replaced(tmp_path: Path) -> None:
    gone = tmp_path / "unplugged"
    gone.mkdir()
    assert run_cli("models", "folder", str(gone)).returncode == 0
    gone.rmdir()
    assert_clean_failure(run_cli("models", "list"), "not available", "models folder PATH")
    assert not gone.exists()  # never created on the wrong disk
    replacement = tmp_path / "replacement"
    replacement.mkdir()
    assert _json("models", "folder", str(replacement))["path"] == str(replacement.resolve())
    assert _json("models", "list")["models_dir"] == str(replacement.resolve())
