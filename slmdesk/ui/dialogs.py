"""Modal questions and messages, in one place.

Controllers ask through these functions rather than building message boxes inline, so the wording
stays consistent (and tests can answer them the way a user would click).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QStyle,
    QWidget,
)

from slmdesk.ui.accessibility import named

DIALOG_MIN_WIDTH = 360
DIALOG_MAX_WIDTH = 640


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """Tell the user something failed, in one sentence they can act on."""
    QMessageBox.warning(parent, title, message)


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    """A plain notice."""
    QMessageBox.information(parent, title, message)


def confirm(parent: QWidget | None, title: str, message: str, action: str) -> bool:
    """Ask to go ahead with a destructive ``action`` (its button text); True to proceed."""
    box = QMessageBox(QMessageBox.Icon.Question, title, message, parent=parent)
    go = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    _name_buttons(box)
    box.exec()
    return box.clickedButton() is go


def ask_remove_linked(parent: QWidget | None, name: str, path: Path) -> str | None:
    """For a model linked in place: ``"forget"``, ``"delete"`` or None (cancel)."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Remove model",
        f"“{name}” is used in place from\n{path}\n\nRemove it from the library only, or also "
        "delete the file from disk?",
        parent=parent,
    )
    forget = box.addButton("Remove from library", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton("Delete file too", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    _name_buttons(box)
    box.exec()
    clicked = box.clickedButton()
    if clicked is forget:
        return "forget"
    if clicked is delete:
        return "delete"
    return None


def ask_import_mode(parent: QWidget | None, path: Path) -> str | None:
    """``"copy"`` into the models folder, ``"link"`` in place, or None (cancel)."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Import model",
        f"Import {path.name}?\n\nCopy it into slmdesk's models folder, or use it where it is "
        "(nothing is copied; keep the file there).",
        parent=parent,
    )
    copy = box.addButton("Copy into library", QMessageBox.ButtonRole.AcceptRole)
    link = box.addButton("Use in place", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(copy)
    _name_buttons(box)
    box.exec()
    clicked = box.clickedButton()
    if clicked is copy:
        return "copy"
    if clicked is link:
        return "link"
    return None


def pick_model_file(parent: QWidget | None) -> Path | None:
    """A file dialog for one GGUF model."""
    name, _ = QFileDialog.getOpenFileName(
        parent, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
    )
    return Path(name) if name else None


def ask_text(parent: QWidget | None, title: str, label: str, text: str = "") -> str | None:
    """A one-line text answer (for example a new title), or None when cancelled."""
    dialog = text_dialog(parent, title, label, text)
    ok = dialog.exec() == QInputDialog.DialogCode.Accepted
    value = dialog.textValue()
    dialog.deleteLater()
    return value if ok else None


def _name_buttons(dialog: QWidget) -> None:
    """Name a dialog's buttons by their text (without the & of a mnemonic)."""
    for button in dialog.findChildren(QAbstractButton):
        if not button.accessibleName() and button.text():
            named(button, button.text().replace("&", ""))


def text_dialog(parent: QWidget | None, title: str, label: str, text: str = "") -> QInputDialog:
    """The dialog of `ask_text`, wide enough for its title bar and for the text being edited.

    Why: Qt sizes an input dialog to its label alone, so the window manager cuts the title
    ("Rename chat — slmdesk") and the field shows only the start of a long chat title.
    """
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setInputMode(QInputDialog.InputMode.TextInput)
    dialog.setLabelText(label)
    dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
    dialog.setTextValue(text)
    dialog.sizeHint()  # builds the dialog's widgets, buttons included, so they can be named
    metrics = dialog.fontMetrics()
    app_name = QGuiApplication.applicationDisplayName()
    caption = f"{title} — {app_name}" if app_name else title
    # the title bar's icon and buttons take about 160 pixels on the usual desktops
    wanted = max(
        DIALOG_MIN_WIDTH,
        metrics.horizontalAdvance(caption) + 160,
        min(metrics.horizontalAdvance(text) + 80, DIALOG_MAX_WIDTH),
    )
    # the dialog's layout fixes its own minimum size when shown: widen the field instead
    field = dialog.findChild(QLineEdit)
    if field is not None:
        margins = dialog.style().pixelMetric(QStyle.PixelMetric.PM_LayoutLeftMargin)
        field.setMinimumWidth(min(wanted, DIALOG_MAX_WIDTH) - 2 * margins)
        # the label is not tied to the field: name it for screen readers
        named(field, label.rstrip(" :") or title)
        for caption in dialog.findChildren(QLabel):
            caption.setBuddy(field)
    _name_buttons(dialog)
    return dialog


def ask_save_path(parent: QWidget | None, title: str, suggested: str) -> Path | None:
    """Where to save an export: Markdown (.md) or JSON (.json)."""
    name, _ = QFileDialog.getSaveFileName(
        parent,
        title,
        str(Path.home() / suggested),
        "Markdown (*.md);;JSON (*.json)",
    )
    return Path(name) if name else None


def pick_text_file(parent: QWidget | None, title: str) -> Path | None:
    """A plain-text file (for example a calibration text)."""
    name, _ = QFileDialog.getOpenFileName(
        parent, title, str(Path.home()), "Text (*.txt *.md);;All files (*)"
    )
    return Path(name) if name else None
