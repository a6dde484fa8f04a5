"""What killed optimize runs leave behind is removed; what live runs use is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from slmdesk.optimize.leftovers import remove_stale


def _dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_runs_files_and_fit_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    fit_dead = tmp_path / f"fit-{dead}-1700000000000"
    (fit_dead / "candidates").mkdir(parents=True)
    (fit_dead / "candidates" / "Q4_K_M.gguf").write_bytes(b"GGUF" + bytes(64))
    fit_alive = tmp_path / f"fit-{alive}-1700000000001"
    fit_alive.mkdir()
    not_a_folder = tmp_path / f"fit-{dead}-1700000000002"
    not_a_folder.write_text("a file a user named so", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep", encoding="utf-8")
    link = tmp_path / f"fit-{dead}-1700000000003"
    link.symlink_to(elsewhere, target_is_directory=True)
    partial = tmp_path / f".small.gguf.partial-{dead}"
    partial.write_bytes(b"half")
    user_folder = tmp_path / "fit-for-work"
    user_folder.mkdir()

    removed = remove_stale(tmp_path)

    assert sorted(removed) == sorted([fit_dead, partial])
    assert not fit_dead.exists() and not partial.exists()
    assert fit_alive.is_dir() and not_a_folder.is_file() and user_folder.is_dir()
    assert link.is_symlink() and (elsewhere / "keep.txt").read_text(encoding="utf-8") == "keep"
