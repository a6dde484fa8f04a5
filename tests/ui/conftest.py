"""GUI test helpers: answer modal dialogs the way a user would click, and fail any test that
blocks the GUI thread while the window is shown (`gui_guard`, see ``gui_guard.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from gui_guard import gui_guard, pytest_runtest_call, register_marker

from slmdesk.ui import dialogs
from slmdesk.ui.library import source_dialogs

__all__ = ["DialogScript", "dialog_script", "gui_guard", "pytest_runtest_call"]


def pytest_configure(config: pytest.Config) -> None:
    register_marker(config)


@dataclass
class DialogScript:
    """Answers to give, and a record of the messages shown."""

    answers: dict[str, object] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)


@pytest.fixture
def dialog_script(monkeypatch: pytest.MonkeyPatch) -> Iterator[DialogScript]:
    """Replace the modal dialogs with scripted answers (modal loops cannot run in tests)."""
    script = DialogScript()

    def answer(name: str, default: object) -> object:
        script.asked.append(name)
        return script.answers.get(name, default)

    monkeypatch.setattr(dialogs, "show_error", lambda _p, _t, m: script.errors.append(m))
    monkeypatch.setattr(dialogs, "show_info", lambda _p, _t, m: script.infos.append(m))
    monkeypatch.setattr(dialogs, "confirm", lambda *_a: answer("confirm", False))
    monkeypatch.setattr(dialogs, "ask_remove_linked", lambda *_a: answer("remove_linked", None))
    monkeypatch.setattr(dialogs, "ask_import_mode", lambda *_a: answer("import_mode", None))
    monkeypatch.setattr(dialogs, "pick_model_file", lambda *_a: answer("pick_file", None))
    monkeypatch.setattr(
        source_dialogs, "ask_remove_source", lambda *_a: answer("remove_source", None)
    )
    monkeypatch.setattr(source_dialogs, "pick_folder", lambda *_a: answer("pick_folder", None))
    yield script
