"""The chat header says so when the model's chat template is refused in the middle of a chat."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from slmdesk.app import build_window
from slmdesk.models import synth
from slmdesk.models.library import Library

TIMEOUT = 60_000
# Harmless until someone writes the trigger: then ten billion loop steps.
TRAP = (
    "{% for m in messages %}{% if 'loop forever please' in m['content'] %}"
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_a_template_refused_mid_chat_updates_the_format_in_the_header(
    qtbot, tmp_path: Path
) -> None:
    model = synth.write_tiny_llama(
        tmp_path / "trap.gguf", synth.TinyModelSpec(chat_template=TRAP, name="Trap chat")
    )
    Library().import_model(model)
    parts = build_window(autoload_model=True)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Chat")
    try:
        controller = parts.chat_controller
        assert controller is not None
        qtbot.waitUntil(lambda: controller.loaded_name == "trap", timeout=TIMEOUT)
        assert "own chat template" in controller.view.format_label.text()
        controller.view.settings_panel.max_tokens.setValue(4)
        controller.view.composer.setPlainText("loop forever please")
        qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: controller.generating, timeout=5000)
        qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
        label = controller.view.format_label.text()
        assert "ChatML format (fallback: the model's chat template was refused" in label
        widgets = controller.view.messages.widgets()
        assert [w.role for w in widgets] == ["user", "assistant"]
    finally:
        parts.window.close()
        parts.shutdown()
