"""Choosing and moving the models folder, on real files: across filesystems, under a kill, no room.

The second filesystem is /dev/shm (a tmpfs) when the machine has one; tests that need it are
skipped elsewhere. "No room" is simulated by replacing `location.free_bytes`: making a tiny
filesystem needs root and mount rights a test cannot count on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.common import paths
from slmdesk.common.errors import LibraryError
from slmdesk.models.library import Library
from slmdesk.models.library import location as location_module
from slmdesk.models.library.location import folder_info, use_folder
from slmdesk.models.library.move import MoveCancelled, move_models
from slmdesk.models.library.move_journal import JOURNAL_NAME, KILL_ENV
from slmdesk.models.model_settings import ModelSettings
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

SHM = Path("/dev/shm")
# Larger than one 8 MiB copy chunk, so a kill "mid-copy" really stops inside the file.
BIG_SPEC = TinyModelSpec(n_layers=4, n_embd=512, n_ff=1024, seed=7, name="Big Tiny")


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big-tiny.gguf"
    write_tiny_llama(path, BIG_SPEC)
    assert path.stat().st_size > 8 << 20
    return path


@pytest.fixture
def other_disk() -> Iterator[Path]:
    """An empty folder on another filesystem (a tmpfs)."""
    if not SHM.is_dir() or not os.access(SHM, os.W_OK):
        pytest.skip("no /dev/shm tmpfs to move across filesystems")
    folder = Path(tempfile.mkdtemp(prefix="slmdesk-move-", dir=SHM))
    try:
        if folder.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
            pytest.skip("/dev/shm is on the same filesystem as the temp folder")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fresh_model(folder: Path) -> Path:
    """A model with bytes of its own (the library refuses a second copy of the same bytes)."""
    return write_tiny_llama(folder / "fresh.gguf", TinyModelSpec(seed=99))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(tiny_model: Path, big_model: Path) -> tuple[Library, dict[str, str]]:
    """A library with an imported model, a big one and one dropped into the folder by hand."""
    library = Library()
    library.import_model(tiny_model)
    library.import_model(big_model)
    nested = library.models_dir / "by-hand"
    nested.mkdir()
    shutil.copyfile(tiny_model, nested / "dropped.gguf")
    with open(nested / "dropped.gguf", "ab") as handle:
        handle.write(b"\0" * 32)  # different bytes: not a duplicate of the imported one
    hashes = {e.name: _sha(e.path) for e in library.entries()}
    assert set(hashes) == {"tiny-llama-F16", "big-tiny", "dropped"}
    return library, hashes


def _partials(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.rglob(".*") if ".importing" in p.name]


def _assert_whole(library: Library, hashes: dict[str, str], *folders: Path) -> None:
    """Every model listed once, its file there with its bytes, each in one place only."""
    entries = library.entries()
    assert sorted(e.name for e in entries) == sorted(hashes)
    for entry in entries:
        assert entry.status == "ok", entry
        assert _sha(entry.path) == hashes[entry.name]
        home = next(f.resolve() for f in folders if entry.path.is_relative_to(f.resolve()))
        copies = [f / entry.path.relative_to(home) for f in folders]
        assert sum(c.exists() for c in copies) == 1, copies
    assert _partials(*folders) == []
    assert not (paths.config_dir() / JOURNAL_NAME).exists()


def test_move_across_filesystems(tiny_model: Path, big_model: Path, other_disk: Path) -> None:
    library, hashes = _fill(tiny_model, big_model)
    library.save_settings("big-tiny", ModelSettings(context_length=1024))
    old = library.models_dir
    seen: list[tuple[int, int, str]] = []
    result = move_models(library, other_disk, progress=lambda d, t, n: seen.append((d, t, n)))
    assert result.copied and result.models == 3
    assert library.models_dir == other_disk.resolve() == paths.models_dir()
    assert not list(old.rglob("*.gguf"))  # sources removed
    assert (other_disk / "by-hand" / "dropped.gguf").exists()  # nested folders kept
    _assert_whole(Library(), hashes, old, other_disk)
    total = sum(e.size_bytes for e in library.entries())
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and seen[-1][:2] == (total, total)
    assert {n for _, _, n in seen} >= {"big-tiny", "tiny-llama-F16"}
    assert all(e.managed for e in library.entries())
    assert Library().settings_of("big-tiny").context_length == 1024  # the record moved whole
    # the next model goes to the new folder
    fresh = _fresh_model(old.parent)
    assert library.import_model(fresh).path.parent == other_disk.resolve()


def test_move_on_one_filesystem_renames(tiny_model: Path, big_model: Path, tmp_path: Path) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    target = tmp_path / "new-models"
    target.mkdir()
    inode = (old / "big-tiny.gguf").stat().st_ino
    result = move_models(library, target)
    assert not result.copied
    assert (target / "big-tiny.gguf").stat().st_ino == inode  # renamed, not copied
    _assert_whole(Library(), hashes, old, target)
    assert Library().models_dir == target.resolve()


def test_a_destination_without_room_is_refused_before_anything_is_written(
    tiny_model: Path, big_model: Path, other_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library, hashes = _fill(tiny_model, big_model)
    needed = sum(e.size_bytes for e in library.entries())
    monkeypatch.setattr(location_module, "free_bytes", lambda folder: needed)  # no margin left
    with pytest.raises(LibraryError, match=r"Not enough room in .*GB are free"):
        move_models(library, other_disk)
    assert list(other_disk.iterdir()) == []
    assert library.models_dir == paths.models_dir() != other_disk
    _assert_whole(library, hashes, library.models_dir)


def test_cancel_mid_move_rolls_back(tiny_model: Path, big_model: Path, other_disk: Path) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    copied: list[int] = []
    with pytest.raises(MoveCancelled, match="cancelled"):
        move_models(
            library,
            other_disk,
            progress=lambda d, t, n: copied.append(d),
            cancel=lambda: bool(copied),
        )
    assert copied  # it did start copying
    assert [p for p in other_disk.rglob("*") if p.is_file()] == []
    assert Library().models_dir == old
    _assert_whole(Library(), hashes, old, other_disk)


@pytest.mark.parametrize(
    "make_target, message",
    [
        (lambda home, models: home / "missing", "does not exist"),
        (lambda home, models: models / "inside", "inside the current models folder"),
        (lambda home, models: home, "holds the current models folder"),
        (lambda home, models: models, "already the models folder"),
        (lambda home, models: home / "a-file", "is a file, not a folder"),
    ],
)
def test_unusable_folders_are_refused_with_a_sentence(
    slmdesk_home: Path, tiny_model: Path, make_target, message: str
) -> None:
    library = Library()
    library.import_model(tiny_model)
    (library.models_dir / "inside").mkdir()
    (slmdesk_home / "a-file").write_text("x")
    target = make_target(slmdesk_home, library.models_dir)
    for change in (use_folder, move_models):
        with pytest.raises(LibraryError, match=message):
            change(library, target)
    assert paths.chosen_models_dir() is None


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(LibraryError, match=r"Cannot use .* as the models folder"):
            use_folder(Library(), folder)
    finally:
        folder.chmod(0o700)


def test_choosing_a_folder_without_moving_keeps_the_models_listed(
    tiny_model: Path, big_model: Path, tmp_path: Path
) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    target = tmp_path / "elsewhere"
    target.mkdir()
    info = use_folder(library, target)
    assert info.path == target.resolve() and info.models == 0 and info.bytes == 0
    assert json.loads(paths.models_folder_setting_path().read_text()) == {"path": str(info.path)}
    restarted = Library()
    assert restarted.models_dir == target.resolve()
    _assert_whole(restarted, hashes, old)  # the hand-dropped file too
    assert not any(e.managed for e in restarted.entries())  # linked in place
    assert restarted.import_model(_fresh_model(tmp_path)).path.parent == target.resolve()
    # removing a kept model forgets it but keeps its file (it is no longer in the models folder)
    entry, deleted = restarted.remove("dropped")
    assert not deleted and entry.path.exists()


def test_folder_info_counts_the_models_in_the_folder(tiny_model: Path, big_model: Path) -> None:
    library, _ = _fill(tiny_model, big_model)
    info = folder_info(library)
    assert info.path == library.models_dir
    assert info.models == 3
    assert info.bytes == sum(e.size_bytes for e in library.entries())
    assert info.free_bytes is not None and info.free_bytes > 0


# -- a kill at every step -------------------------------------------------------------------------

_MOVE_SCRIPT = """
import sys
from slmdesk.models.library import Library
from slmdesk.models.library.move import move_models
move_models(Library(), sys.argv[1])
print("moved")
"""

# point -> whether a restart finishes the move (True) or rolls it back (False), when copying
KILL_POINTS = {
    "journal-written": False,
    "mid-copy": False,
    "copied": True,
    "renamed": True,
    "indexed": True,
    "before-journal-removed": True,
}


def _move_killed_at(point: str, target: Path) -> None:
    env = dict(os.environ, **{KILL_ENV: point})
    done = subprocess.run(
        [sys.executable, "-c", _MOVE_SCRIPT, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr[-2000:])
    assert "moved" not in done.stdout
    assert (paths.config_dir() / JOURNAL_NAME).exists()  # the killed move left its journal


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_move_killed_at_any_step_is_settled_by_the_next_start(
    point: str, tiny_model: Path, big_model: Path, other_disk: Path
) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    _move_killed_at(point, other_disk)
    restarted = Library()  # any start: it finishes or rolls back the move
    expected = other_disk.resolve() if KILL_POINTS[point] else old
    assert restarted.models_dir == expected
    assert all(e.path.is_relative_to(expected) for e in restarted.entries())
    _assert_whole(restarted, hashes, old, other_disk)
    # and the library works on: another move goes through
    back = Path(tempfile.mkdtemp(prefix="back-", dir=old.parent))
    move_models(restarted, back)
    _assert_whole(Library(), hashes, old, other_disk, back)


@pytest.mark.parametrize("point", ["journal-written", "renamed", "indexed"])
def test_a_rename_move_killed_is_finished_by_the_next_start(
    point: str, tiny_model: Path, big_model: Path, tmp_path: Path
) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    target = tmp_path / "same-disk"
    target.mkdir()
    _move_killed_at(point, target)
    restarted = Library()
    assert restarted.models_dir == target.resolve()  # a rename move is committed from the start
    _assert_whole(restarted, hashes, old, target)


def test_a_file_that_took_the_name_meanwhile_is_never_replaced(
    tiny_model: Path, big_model: Path, other_disk: Path
) -> None:
    library, hashes = _fill(tiny_model, big_model)
    old = library.models_dir
    _move_killed_at("copied", other_disk)  # every copy verified, none renamed yet
    foreign = other_disk / "big-tiny.gguf"
    theirs = b"somebody else's file".ljust(big_model.stat().st_size, b".")  # even the same size
    foreign.write_bytes(theirs)
    restarted = Library()
    assert foreign.read_bytes() == theirs
    by_name = {e.name: e for e in restarted.entries()}
    assert by_name["big-tiny"].path == old / "big-tiny.gguf"  # stayed where it was
    assert _sha(by_name["big-tiny"].path) == hashes["big-tiny"]
    assert by_name["tiny-llama-F16"].path.parent == other_disk.resolve()  # the others moved
    assert sorted(e.name for e in restarted.entries() if e.status == "ok") == sorted(hashes)
    assert _partials(old, other_disk) == []
