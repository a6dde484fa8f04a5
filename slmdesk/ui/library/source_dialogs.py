"""The questions asked about models that live in other apps' folders (`models.library.sources`).

Removing such a model forgets it by default; deleting the file is a separate, explicit choice
whose text names the app it breaks.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from slmdesk.models.library.source_sync import deletion_warning
from slmdesk.models.library.sources.base import APP_TITLES


def ask_remove_source(parent: QWidget | None, name: str, path: Path, app: str | None) -> str | None:
    """For another app's model: ``"forget"`` (the default), ``"delete"`` or None (cancel)."""
    title = APP_TITLES.get(app or "", "another app")
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "Remove model",
        f"“{name}” belongs to {title}:\n{path}\n\n"
        f"Forget stops listing it here; the file stays and {title} keeps working. Turn "
        f"{title} off and on again in Settings to list it again.\n\n"
        f"{deletion_warning(app)}",
        parent=parent,
    )
    forget = box.addButton("Forget", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton(f"Delete {title}'s file", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(forget)
    for button in (forget, delete):
        button.setAccessibleName(button.text())
    box.exec()
    clicked = box.clickedButton()
    if clicked is forget:
        return "forget"
    if clicked is delete:
        return "delete"
    return None


def pick_folder(parent: QWidget | None) -> str | None:
    """Ask for a folder of models to read in place; None when cancelled."""
    folder = QFileDialog.getExistingDirectory(parent, "Add a folder of models")
    return folder or None
