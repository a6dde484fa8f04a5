"""System prompt presets and a model's saved defaults in the chat settings panel.

The presets file and the library index are read and written on the task pool only; the model
defaults shown come from the last library listing (`set_entries`), so nothing here touches a file
on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot

from slmdesk.chat.connections import parse_remote_ref
from slmdesk.chat.presets import Preset, PresetStore
from slmdesk.models.library import Library, ModelEntry
from slmdesk.models.model_settings import ModelSettings, sampling_from
from slmdesk.ui import dialogs
from slmdesk.ui.chat.view import SettingsPanel
from slmdesk.ui.runtime.tasks import TaskRunner


class ChatDefaults(QObject):
    """Fills the presets row and the model-defaults row, and acts on their buttons."""

    def __init__(
        self,
        panel: SettingsPanel,
        library: Library,
        tasks: TaskRunner,
        current_model: Callable[[], str | None],
        on_error: Callable[[BaseException], None],
        presets: PresetStore | None = None,
    ) -> None:
        super().__init__(panel)
        self.panel = panel
        self.library = library
        self.tasks = tasks
        self.presets = presets or PresetStore()
        self.current_model = current_model
        self.on_error = on_error
        self._texts: dict[str, str] = {}
        self._settings: dict[str, ModelSettings] = {}
        rows = panel.presets
        rows.picked.connect(self._on_preset_picked)
        rows.save_requested.connect(self._on_save_preset)
        rows.rename_requested.connect(self._on_rename_preset)
        rows.delete_requested.connect(self._on_delete_preset)
        panel.system_prompt.textChanged.connect(self._on_prompt_edited)
        panel.model_defaults.save_requested.connect(self._on_save_defaults)
        panel.model_defaults.forget_requested.connect(self._on_forget_defaults)
        self.refresh_presets()

    # -- presets -------------------------------------------------------------------------------

    def refresh_presets(self, select: str | None = None) -> None:
        """Re-read the presets on the task pool; then offer them (choosing ``select``)."""
        wanted = self.panel.presets.current() if select is None else select
        self.tasks.run(
            self.presets.all,
            lambda presets: self._show_presets(presets, wanted),
            self.on_error,
            name="chat-presets",
        )

    def _show_presets(self, presets: list[Preset], wanted: str) -> None:
        self._texts = {p.name: p.text for p in presets}
        self.panel.presets.set_presets([p.name for p in presets], wanted)

    def select_preset(self, name: str) -> None:
        """Show the preset a conversation was given (none when it no longer exists)."""
        self.panel.presets.select(name if name in self._texts else "")

    def preset_name(self) -> str:
        """The chosen preset ("" for none)."""
        return self.panel.presets.current()

    @Slot(str)
    def _on_preset_picked(self, name: str) -> None:
        if name in self._texts:
            self.panel.system_prompt.setPlainText(self._texts[name])

    @Slot()
    def _on_prompt_edited(self) -> None:
        """A prompt edited away from its preset's text is no longer that preset."""
        name = self.panel.presets.current()
        if name and self.panel.system_prompt.toPlainText() != self._texts.get(name):
            self.panel.presets.select("")

    @Slot()
    def _on_save_preset(self) -> None:
        text = self.panel.system_prompt.toPlainText()
        if not text.strip():
            dialogs.show_info(
                self.panel, "Save preset", "Write a system prompt first, then save it as a preset."
            )
            return
        name = dialogs.ask_text(self.panel, "Save preset", "Preset name:")
        if name is None or not name.strip():
            return
        self.tasks.run(
            lambda: self.presets.save(name, text),
            lambda preset: self.refresh_presets(select=preset.name),
            self.on_error,
            name="chat-presets",
        )

    @Slot(str)
    def _on_rename_preset(self, name: str) -> None:
        if not name:
            return
        new_name = dialogs.ask_text(self.panel, "Rename preset", "New name:", name)
        if new_name is None or not new_name.strip() or new_name == name:
            return
        self.tasks.run(
            lambda: self.presets.rename(name, new_name),
            lambda preset: self.refresh_presets(select=preset.name),
            self.on_error,
            name="chat-presets",
        )

    @Slot(str)
    def _on_delete_preset(self, name: str) -> None:
        if not name or not dialogs.confirm(
            self.panel,
            "Delete preset",
            f"Delete the preset {name!r}? Chats that used it keep their system prompt.",
            "Delete",
        ):
            return
        self.tasks.run(
            lambda: self.presets.delete(name),
            lambda _preset: self.refresh_presets(select=""),
            self.on_error,
            name="chat-presets",
        )

    # -- model defaults ------------------------------------------------------------------------

    def set_entries(self, entries: list[ModelEntry]) -> None:
        """Remember every model's saved defaults from the latest library listing."""
        self._settings = {e.name: ModelSettings.from_dict(e.settings) for e in entries}
        self.show_model(self.current_model())

    def settings_for(self, name: str | None) -> ModelSettings:
        """The saved defaults of ``name`` (empty when none)."""
        return self._settings.get(name or "", ModelSettings())

    def show_model(self, name: str | None) -> None:
        """Describe the defaults of the model a new chat would use."""
        has = name is not None and not self.settings_for(name).is_empty()
        self.panel.model_defaults.show_model(name, has, parse_remote_ref(name) is not None)

    def from_panel(self) -> ModelSettings:
        """The panel's values as a model's defaults."""
        panel = self.panel
        seed = panel.seed.value()
        sampling: dict[str, Any] = {
            "temperature": panel.temperature.value(),
            "top_p": panel.top_p.value(),
            "top_k": panel.top_k.value(),
            "min_p": panel.min_p.value(),
            "repeat_penalty": panel.repeat_penalty.value(),
            "max_tokens": panel.max_tokens.value(),
        }
        if seed >= 0:
            sampling["seed"] = seed
        system = panel.system_prompt.toPlainText()
        return ModelSettings(
            context_length=panel.context.value(),
            threads=panel.threads.value(),
            gpu_layers=(
                panel.gpu_layers_value()
                if panel.gpu_layers.isVisibleTo(panel)
                else self.settings_for(self.current_model()).gpu_layers
            ),
            system_prompt=system or None,
            sampling=sampling_from(sampling),
        )

    @Slot()
    def _on_save_defaults(self) -> None:
        name = self.current_model()
        if name is not None:
            self._save(name, self.from_panel())

    @Slot()
    def _on_forget_defaults(self) -> None:
        name = self.current_model()
        if name is not None:
            self._save(name, ModelSettings())

    def _save(self, name: str, settings: ModelSettings) -> None:
        def done(entry: ModelEntry) -> None:
            self._settings[entry.name] = ModelSettings.from_dict(entry.settings)
            self.show_model(self.current_model())

        self.tasks.run(
            lambda: self.library.save_settings(name, settings),
            done,
            self.on_error,
            name="chat-model-defaults",
        )
