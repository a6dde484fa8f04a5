"""Both themes keep selections and choices visible: contrast measured on rendered pixels."""

from __future__ import annotations

import pytest
from layout_checks import contrast, grab_image, pixels, strongest_contrast
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QListWidget,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QVBoxLayout,
    QWidget,
)

from slmdesk.ui.theme import apply_theme

THEMES = ("light", "dark")


@pytest.fixture
def themed(qapp: QApplication):  # type: ignore[no-untyped-def]
    """Apply a theme for one test and put the previous look back afterwards."""
    style, palette, sheet = qapp.style().name(), qapp.palette(), qapp.styleSheet()

    def use(theme: str) -> None:
        apply_theme(qapp, theme)

    yield use
    qapp.setStyleSheet(sheet)
    qapp.setPalette(palette)
    qapp.setStyle(style)


def _conversation_list(qtbot) -> QListWidget:  # type: ignore[no-untyped-def]
    chats = QListWidget()
    chats.setObjectName("conversations")  # the Chat page's list and its style rules
    chats.setWordWrap(True)
    for title in ("Plan a weekend trip", "Write a Python function", "Summarise this article"):
        chats.addItem(title)
    chats.resize(260, 200)
    qtbot.addWidget(chats)
    chats.show()
    chats.setCurrentRow(1)
    qtbot.waitExposed(chats)
    return chats


@pytest.mark.parametrize("theme", THEMES)
def test_the_open_conversation_stands_out_and_its_title_reads(qtbot, themed, theme) -> None:
    themed(theme)
    chats = _conversation_list(qtbot)
    image = grab_image(chats.viewport())
    selected = chats.visualItemRect(chats.item(1))
    other = chats.visualItemRect(chats.item(2))
    # the row's padding (6 px above the text) shows its background; the middle holds the text
    selected_background = image.pixelColor(selected.center().x(), selected.top() + 2)
    row_background = image.pixelColor(other.center().x(), other.top() + 2)
    text_area = QRect(selected.left() + 4, selected.top() + 6, selected.width() - 8, 12)
    assert contrast(selected_background, row_background) >= 3.0, (
        f"{theme}: the selected row ({selected_background.name()}) is hard to tell from the "
        f"others ({row_background.name()})"
    )
    assert strongest_contrast(image, text_area, selected_background) >= 4.5, (
        f"{theme}: the selected row's title does not read on {selected_background.name()}"
    )


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("kind", [QRadioButton, QCheckBox])
def test_radio_buttons_and_check_boxes_are_visible(qtbot, themed, theme, kind) -> None:
    themed(theme)
    box = QWidget()
    layout = QVBoxLayout(box)
    button = kind("Keep every block")
    layout.addWidget(button)
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    option = QStyleOptionButton()
    button.initStyleOption(option)
    element = (
        QStyle.SubElement.SE_RadioButtonIndicator
        if kind is QRadioButton
        else QStyle.SubElement.SE_CheckBoxIndicator
    )
    indicator = button.style().subElementRect(element, option, button)
    background = box.palette().color(QPalette.ColorRole.Window)
    image = grab_image(button)
    # WCAG 1.4.11: the outline of a control needs 3:1 against what surrounds it
    assert strongest_contrast(image, indicator, background) >= 3.0, (
        f"{theme}: an unchecked {kind.__name__} has no visible outline"
    )
    button.setChecked(True)
    checked = grab_image(button)
    changed = [
        (a, b)
        for a, b in zip(pixels(image, indicator), pixels(checked, indicator), strict=True)
        if contrast(a, b) >= 3.0
    ]
    assert len(changed) >= 12, f"{theme}: checking a {kind.__name__} barely changes it"
    assert QColor(background).isValid()
