"""Settings › Models folder in the real window: real files, the real library and task pool.

The GUI-thread guard (conftest) fails any of these tests in which the GUI thread writes a file,
so the folder check, the switch and the move are proved to run off it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.app import AppParts, build_window
from slmdesk.common import paths
from slmdesk.models.library import Library
from slmdesk.models.library import move as move_module
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama
from slmdesk.ui.settings import models_folder_section as section_module
from slmdesk.ui.settings.models_folder_section import ModelsFolderSection

TIMEOUT = 60_000


@pytest.fixture
def target() -> Iterator[Path]:
    """An empty folder, on another filesystem (/dev/shm) when the machine has one."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="slmdesk-ui-move-", dir=base))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def parts(qtbot, tiny_model: Path, tmp_path: Path) -> Iterator[AppParts]:
    library = Library()
    library.import_model(tiny_model)
    big = write_tiny_llama(tmp_path / "big.gguf", TinyModelSpec(n_embd=512, n_ff=1024, seed=5))
    library.import_model(big)
    built = build_window(autoload_model=False)
    qtbot.addWidget(built.window)
    built.window.show()
    built.window.show_page("Settings")
    qtbot.waitUntil(lambda: built.tasks.idle, timeout=TIMEOUT)
    yield built
    built.window.close()
    built.shutdown()


def _section(parts: AppParts) -> ModelsFolderSection:
    section = parts.window.pages["Settings"].models_folder
    assert isinstance(section, ModelsFolderSection)
    return section


def _listed_paths(parts: AppParts) -> list[Path]:
    return sorted(e.path for e in parts.library_controller.view.table_model.entries())


def test_the_section_shows_the_folder_and_its_free_space(qtbot, parts: AppParts) -> None:
    section = _section(parts)
    qtbot.waitUntil(lambda: section.info is not None, timeout=TIMEOUT)
    assert section.path_label.text() == str(paths.models_dir())
    assert "free" in section.details.text() and "2 model(s)" in section.details.text()
    assert section.progress.isHidden() and section.cancel_button.isHidden()


def test_change_and_move_the_models_then_the_library_page_relists(
    qtbot, parts: AppParts, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = _section(parts)
    qtbot.waitUntil(lambda: section.info is not None, timeout=TIMEOUT)
    asked: list[tuple[int, int]] = []

    def ask(_parent, info, _target):
        asked.append((info.models, info.bytes))
        return section_module.MOVE

    monkeypatch.setattr(section_module, "pick_folder", lambda _p, _s: target)
    monkeypatch.setattr(section_module, "ask_move", ask)
    progress: list[object] = []
    real_start = section.start_change

    def start_change(folder: Path, move: bool):
        job = real_start(folder, move)
        job.progress.connect(progress.append)  # before any report can arrive
        return job

    monkeypatch.setattr(section, "start_change", start_change)
    with qtbot.waitSignal(section.folder_changed, timeout=TIMEOUT):
        section.change_button.click()
    assert asked and asked[0][0] == 2 and asked[0][1] > 8 << 20  # the question names the size
    assert progress  # bytes done, total and the model, as the copy went
    resolved = target.resolve()
    qtbot.waitUntil(
        lambda: (
            bool(_listed_paths(parts)) and all(p.parent == resolved for p in _listed_paths(parts))
        ),
        timeout=TIMEOUT,
    )
    assert len(_listed_paths(parts)) == 2
    qtbot.waitUntil(lambda: section.job is None and parts.tasks.idle, timeout=TIMEOUT)
    assert section.path_label.text() == str(resolved)
    assert "New models are stored in" in section.status.text()
    assert section.progress.isHidden()
    assert paths.models_dir() == resolved


def test_cancel_mid_move_rolls_back(
    qtbot, parts: AppParts, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = _section(parts)
    qtbot.waitUntil(lambda: section.info is not None, timeout=TIMEOUT)
    before = _listed_paths(parts)
    copying = threading.Event()
    real_copy = move_module._copy_file

    def copy_that_waits_for_cancel(source, copy, report, cancel):
        """Pause after the first chunk until Cancel is pressed (a pause point, no sleep)."""

        def report_then_wait(n: int) -> None:
            report(n)
            copying.set()
            deadline = threading.Event()
            for _ in range(3000):  # at most 30 s
                if cancel():
                    return
                deadline.wait(0.01)

        return real_copy(source, copy, report_then_wait, cancel)

    monkeypatch.setattr(move_module, "_copy_file", copy_that_waits_for_cancel)
    monkeypatch.setattr(section_module, "pick_folder", lambda _p, _s: target)
    monkeypatch.setattr(section_module, "ask_move", lambda *_a: section_module.MOVE)
    section.change_button.click()
    qtbot.waitUntil(copying.is_set, timeout=TIMEOUT)
    assert section.cancel_button.isVisible()
    section.cancel_button.click()
    qtbot.waitUntil(lambda: section.job is None and parts.tasks.idle, timeout=TIMEOUT)
    assert "cancelled" in section.status.text()
    assert [p for p in target.rglob("*") if p.is_file()] == []
    assert paths.models_dir() != target.resolve()
    assert sorted(e.path for e in Library().entries()) == before
    assert all(p.exists() for p in before)


def test_an_unusable_folder_is_a_sentence(
    qtbot, parts: AppParts, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = _section(parts)
    qtbot.waitUntil(lambda: section.info is not None, timeout=TIMEOUT)
    inside = paths.models_dir()  # the same folder
    monkeypatch.setattr(section_module, "pick_folder", lambda _p, _s: inside)
    monkeypatch.setattr(section_module, "ask_move", lambda *_a: section_module.MOVE)
    section.change_button.click()
    qtbot.waitUntil(lambda: "already the models folder" in section.status.text(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: section.job is None and parts.tasks.idle, timeout=TIMEOUT)
    assert section.change_button.isEnabled()
    assert "\n" not in section.status.text()
