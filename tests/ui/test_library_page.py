"""The Library page with real files, a real library index and the real task pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from slmdesk.app import AppParts, build_window
from slmdesk.models.library import Library
from slmdesk.ui.library.table_model import COLUMNS


@pytest.fixture
def app_parts(qtbot) -> AppParts:
    parts = build_window(autoload_model=False)
    qtbot.addWidget(parts.window)
    parts.window.show()
    parts.window.show_page("Library")
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=10_000)
    yield parts
    parts.window.close()
    parts.shutdown()


def _settle(qtbot, parts: AppParts) -> None:
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=30_000)  # results shown, none pending


def _names(parts: AppParts) -> list[str]:
    return [e.name for e in parts.library_controller.view.table_model.entries()]


def test_empty_library_shows_a_way_forward(app_parts: AppParts) -> None:
    view = app_parts.library_controller.view
    assert view.stack.currentWidget() is view.empty
    assert view.empty_import.isEnabled()


def test_import_by_file_dialog(qtbot, app_parts: AppParts, tiny_model: Path, dialog_script) -> None:
    dialog_script.answers.update(pick_file=tiny_model, import_mode="copy")
    view = app_parts.library_controller.view
    with qtbot.waitSignal(app_parts.library_controller.models_changed, timeout=10000):
        qtbot.mouseClick(view.import_button, Qt.MouseButton.LeftButton)
        _settle(qtbot, app_parts)
    _settle(qtbot, app_parts)
    assert _names(app_parts) == ["tiny-llama-F16"]
    assert view.stack.currentWidget() is not view.empty
    assert (Library().models_dir / tiny_model.name).exists()
    # the details pane shows the facts and a memory verdict
    view.select_name("tiny-llama-F16")
    _settle(qtbot, app_parts)
    assert view.details.title.text() == "tiny-llama-F16"
    qtbot.waitUntil(lambda: view.details.verdict.isVisible(), timeout=5000)
    assert view.details.verdict.text() == "fits"
    assert "1 model" in view.footer.text()


def test_drag_and_drop_links_in_place(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script
) -> None:
    dialog_script.answers.update(import_mode="link")
    view = app_parts.library_controller.view
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_model))])
    event = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(event)
    _settle(qtbot, app_parts)
    qtbot.waitUntil(lambda: _names(app_parts) == ["tiny-llama-F16"], timeout=5000)
    (entry,) = Library().entries()
    assert not entry.managed and entry.path == tiny_model.resolve()


def test_bad_file_shows_an_error_and_changes_nothing(
    qtbot, app_parts: AppParts, tmp_path: Path, dialog_script, gui_guard
) -> None:
    bad = tmp_path / "fake.gguf"
    with gui_guard.allowed():
        bad.write_text("not a model")
    dialog_script.answers.update(import_mode="copy")
    app_parts.library_controller.import_paths([bad])
    _settle(qtbot, app_parts)
    qtbot.waitUntil(lambda: bool(dialog_script.errors), timeout=5000)
    assert "not a GGUF model" in dialog_script.errors[0]
    assert Library().entries() == []


def test_duplicate_import_is_refused(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script
) -> None:
    dialog_script.answers.update(import_mode="copy")
    app_parts.library_controller.import_paths([tiny_model])
    _settle(qtbot, app_parts)
    app_parts.library_controller.import_paths([tiny_model])
    _settle(qtbot, app_parts)
    qtbot.waitUntil(lambda: bool(dialog_script.errors), timeout=5000)
    assert "already in the library" in dialog_script.errors[0]
    assert len(Library().entries()) == 1


def test_remove_with_confirmation(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script, gui_guard
) -> None:
    with gui_guard.allowed():
        entry = Library().import_model(tiny_model)
    app_parts.library_controller.refresh()
    _settle(qtbot, app_parts)
    view = app_parts.library_controller.view
    view.select_name(entry.name)
    dialog_script.answers["confirm"] = False  # the user cancels first
    qtbot.mouseClick(view.details.remove_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, app_parts)
    assert entry.path.exists()
    dialog_script.answers["confirm"] = True
    qtbot.mouseClick(view.details.remove_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, app_parts)
    qtbot.waitUntil(lambda: _names(app_parts) == [], timeout=5000)
    assert not entry.path.exists()
    assert dialog_script.asked == ["confirm", "confirm"]


def test_sorting_by_size_uses_bytes(
    qtbot, app_parts: AppParts, tiny_model: Path, tiny_model_no_template: Path, gui_guard
) -> None:
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    library = Library()
    small = library.models_dir / "small.gguf"
    with gui_guard.allowed():
        library.import_model(tiny_model)
        write_tiny_llama(small, TinyModelSpec(n_layers=1))
    app_parts.library_controller.refresh()
    _settle(qtbot, app_parts)
    view = app_parts.library_controller.view
    view.table.sortByColumn(COLUMNS.index("Size"), Qt.SortOrder.AscendingOrder)
    first = view.proxy.index(0, 0).data()
    assert first == "small"
    assert shutil.disk_usage(library.models_dir).total > 0


def test_a_damaged_file_shows_its_reason_and_can_be_removed(
    qtbot, app_parts: AppParts, tiny_model: Path, dialog_script, gui_guard
) -> None:
    import gguf
    import numpy as np

    library = Library()
    bad = library.models_dir / "bad.gguf"
    with gui_guard.allowed():  # the test's own files
        library.import_model(tiny_model)
        writer = gguf.GGUFWriter(str(bad), "llama")  # valid GGUF, but a block count as text
        writer.add_string("llama.block_count", "twelve")
        writer.add_tensor("token_embd.weight", np.zeros((8, 16), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    app_parts.library_controller.refresh()
    _settle(qtbot, app_parts)
    qtbot.waitUntil(lambda: len(_names(app_parts)) == 2, timeout=5000)
    view = app_parts.library_controller.view
    row = view.table_model.row_of("bad")
    assert view.table_model.index(row, 0).data() == "bad  (damaged)"
    view.select_name("bad")
    _settle(qtbot, app_parts)
    assert "block_count" in view.details.memory.text()
    assert not view.details.chat_button.isEnabled()
    assert view.details.remove_button.isEnabled()
    dialog_script.answers["confirm"] = True
    qtbot.mouseClick(view.details.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _names(app_parts) == ["tiny-llama-F16"], timeout=5000)
    assert not bad.exists()


def test_the_memory_line_says_what_goes_to_the_gpu(app_parts: AppParts, tiny_model: Path) -> None:
    from slmdesk.models import hardware
    from slmdesk.models.gguf_info import read_gguf_info

    info = read_gguf_info(tiny_model)
    details = app_parts.library_controller.view.details
    details.show_memory(hardware.estimate_with_offload(info, 512, None, None))
    assert "GPU" not in details.memory.text()
    offloaded = hardware.estimate_with_offload(info, 512, None, 8 * 1024**3)
    details.show_memory(offloaded)
    text = details.memory.text()
    assert f"{offloaded.gpu_layers} layers" in text and "go to the GPU" in text
    assert "stays in the computer's memory" in text
