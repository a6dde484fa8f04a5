"""Modal questions and messages, in one place.

Controllers ask through these functions rather than building message boxes inline, so the wording
stays consistent (and tests can answer them the way a user would click).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractButton,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from slmdesk.ui.accessibility import named


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
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setInputMode(QInputDialog.InputMode.TextInput)
    dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
    dialog.setLabelText(label)
    dialog.setTextValue(text)
    dialog.sizeHint()  # builds the dialog's widgets, buttons included, so they can be named
    field = dialog.findChild(QLineEdit)
    if field is not None:  # the label is not tied to the field: name it for screen readers
        named(field, label.rstrip(" :") or title)
        for caption in dialog.findChildren(QLabel):
            caption.setBuddy(field)
    _name_buttons(dialog)
    accepted = dialog.exec() == QInputDialog.DialogCode.Accepted
    return dialog.textValue() if accepted else None


def _name_buttons(dialog: QWidget) -> None:
    """Name a dialog's buttons by their text (without the & of a mnemonic)."""
    for button in dialog.findChildren(QAbstractButton):
        if not button.accessibleName() and button.text():
            named(button, button.text().replace("&", ""))


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
