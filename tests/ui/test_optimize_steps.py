"""The Optimize page's step indicator marks exactly the step on show, in both themes."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from slmdesk.ui.optimize.view import OptimizeView
from slmdesk.ui.theme import apply_theme


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_only_the_current_step_is_bold(qtbot, qapp: QApplication, theme: str) -> None:
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()
    apply_theme(qapp, theme)
    try:
        view = OptimizeView()
        qtbot.addWidget(view)
        view.show()
        qtbot.waitExposed(view)
        for index in (2, 4, 0):
            view.show_step(index)
            bold = [label.font().bold() for label in view.step_labels]
            assert bold == [i == index for i in range(len(view.step_labels))]
    finally:
        qapp.setStyleSheet(sheet)
        qapp.setPalette(palette)
        qapp.setStyle(style)
