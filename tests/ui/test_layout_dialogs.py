"""The rename dialog is wide enough for its title bar and for the title being edited."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QInputDialog

from slmdesk.ui import dialogs

LONG_TITLE = "Plan a weekend trip to the mountains for two"
TITLE_BAR_EXTRAS = 160  # icon, close/minimise/maximise buttons of a usual title bar


def _answer_when_shown(seen: dict[str, object], answer: str) -> None:
    """Look at the modal dialog once it is on screen, then type ``answer`` and press OK."""

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog) or not dialog.isVisible():
            QTimer.singleShot(10, look)
            return
        seen["width"] = dialog.width()
        seen["caption"] = f"{dialog.windowTitle()} — {QGuiApplication.applicationDisplayName()}"
        seen["metrics"] = dialog.fontMetrics()
        seen["field"] = dialog.findChild(dialogs.QLineEdit).width()
        dialog.setTextValue(answer)
        dialog.accept()

    QTimer.singleShot(0, look)


def test_the_rename_dialog_shows_its_whole_title_and_text(qtbot) -> None:
    seen: dict[str, object] = {}
    _answer_when_shown(seen, "Mountains")
    answer = dialogs.ask_text(None, "Rename chat", "Title:", LONG_TITLE)
    assert answer == "Mountains"
    metrics = seen["metrics"]
    caption_width = metrics.horizontalAdvance(seen["caption"])  # type: ignore[attr-defined]
    assert seen["width"] >= caption_width + TITLE_BAR_EXTRAS, seen  # type: ignore[operator]
    text_width = metrics.horizontalAdvance(LONG_TITLE)  # type: ignore[attr-defined]
    assert seen["field"] >= text_width, "the title being renamed is cut in its field"  # type: ignore[operator]


def test_cancelling_the_rename_dialog_gives_none(qtbot) -> None:
    def cancel() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(10, cancel)
            return
        dialog.reject()

    QTimer.singleShot(0, cancel)
    assert dialogs.ask_text(None, "Rename chat", "Title:", "Old") is None
