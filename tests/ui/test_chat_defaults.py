"""The chat settings panel: system prompt presets and a model's saved defaults, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.app import AppParts, build_window
from slmdesk.chat.presets import PresetStore
from slmdesk.models.library import Library
from slmdesk.models.model_settings import ModelSettings
from slmdesk.ui import dialogs

TIMEOUT = 60_000
NAME = "tiny-llama-F16"


def _open(qtbot) -> AppParts:
    parts = build_window(autoload_model=True)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    return parts


@pytest.fixture
def chat(qtbot, tiny_model: Path):
    library = Library()
    library.import_model(tiny_model)
    library.save_settings(
        NAME,
        ModelSettings(
            context_length=1024,
            threads=1,
            system_prompt="Saved prompt.",
            sampling={"temperature": 0.25, "max_tokens": 77},
        ),
    )
    parts = _open(qtbot)
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == NAME, timeout=TIMEOUT)
    yield parts, controller
    parts.window.close()
    parts.shutdown()


def test_a_new_chat_and_the_load_start_from_the_models_defaults(qtbot, chat, gui_guard) -> None:
    _parts, controller = chat
    panel = controller.view.settings_panel
    assert controller.loaded_info is not None
    assert controller.loaded_info["context_length"] == 1024
    assert controller.loaded_info["n_threads"] == 1
    qtbot.waitUntil(lambda: panel.system_prompt.toPlainText() == "Saved prompt.", timeout=TIMEOUT)
    assert panel.temperature.value() == pytest.approx(0.25)
    assert panel.max_tokens.value() == 77
    assert "start from its saved defaults" in panel.model_defaults.label.text()
    assert panel.model_defaults.forget_button.isEnabled()


def test_save_and_forget_the_models_defaults(qtbot, chat, gui_guard) -> None:
    _parts, controller = chat
    panel = controller.view.settings_panel
    panel.temperature.setValue(1.5)
    panel.system_prompt.setPlainText("New default.")
    panel.model_defaults.save_button.click()

    def saved() -> ModelSettings:
        with gui_guard.allowed():
            return Library().settings_of(NAME)

    qtbot.waitUntil(lambda: saved().system_prompt == "New default.", timeout=TIMEOUT)
    assert saved().sampling["temperature"] == pytest.approx(1.5)
    panel.model_defaults.forget_button.click()
    qtbot.waitUntil(lambda: saved().is_empty(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "no saved defaults" in panel.model_defaults.label.text())


def test_presets_fill_the_prompt_and_can_be_saved_renamed_and_deleted(
    qtbot, chat, gui_guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parts, controller = chat
    panel = controller.view.settings_panel
    row = panel.presets
    qtbot.waitUntil(lambda: row.combo.findData("Teacher") >= 0, timeout=TIMEOUT)
    row.combo.setCurrentIndex(row.combo.findData("Teacher"))
    row.combo.activated.emit(row.combo.currentIndex())
    assert panel.system_prompt.toPlainText().startswith("Explain step by step")
    panel.system_prompt.setPlainText("Answer like a sailor.")
    assert row.current() == ""  # edited away from the preset's text

    answers = iter(["Sailor", "Old sailor"])
    monkeypatch.setattr(dialogs, "ask_text", lambda *_a, **_k: next(answers))
    monkeypatch.setattr(dialogs, "confirm", lambda *_a: True)
    row.save_action.trigger()
    qtbot.waitUntil(lambda: row.current() == "Sailor", timeout=TIMEOUT)
    row.rename_action.trigger()
    qtbot.waitUntil(lambda: row.current() == "Old sailor", timeout=TIMEOUT)
    with gui_guard.allowed():
        assert PresetStore().get("Old sailor").text == "Answer like a sailor."
    row.delete_action.trigger()
    qtbot.waitUntil(lambda: row.combo.findData("Old sailor") < 0, timeout=TIMEOUT)
    assert panel.system_prompt.toPlainText() == "Answer like a sailor."  # the chat keeps it
