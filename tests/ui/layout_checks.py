"""Measuring what a user sees: contrast of rendered pixels (WCAG 2 formula), overlaps of widgets.

Tests render real widgets with the theme applied and read colours from the picture, so a style
sheet rule that silently does not apply (a blank selected row) is caught like a user would see it.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QWidget


def luminance(color: QColor) -> float:
    """Relative luminance (WCAG 2)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(color.red())
        + 0.7152 * channel(color.green())
        + 0.0722 * channel(color.blue())
    )


def contrast(a: QColor, b: QColor) -> float:
    """Contrast ratio between two colours, from 1 (same) to 21 (black on white)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def pixels(image: QImage, rect: QRect) -> list[QColor]:
    """Every pixel of ``rect`` (clipped to the image)."""
    rect = rect.intersected(image.rect())
    return [
        image.pixelColor(x, y)
        for y in range(rect.top(), rect.bottom() + 1)
        for x in range(rect.left(), rect.right() + 1)
    ]


def strongest_contrast(image: QImage, rect: QRect, against: QColor) -> float:
    """The highest contrast of any pixel in ``rect`` against ``against`` (text, outlines)."""
    return max(contrast(color, against) for color in pixels(image, rect))


def grab_image(widget: QWidget) -> QImage:
    """The widget as the screen shows it, in device-independent pixels."""
    image = widget.grab().toImage()
    if image.devicePixelRatio() != 1:
        image = image.scaled(widget.size())
    return image


def rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    """``widget``'s rectangle in ``ancestor``'s coordinates."""
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())
