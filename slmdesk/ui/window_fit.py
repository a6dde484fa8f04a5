"""Sizes that fit the screen: the first window's geometry and the smallest size allowed.

Why: a fixed first size (1200×780) is taller than a 768-pixel laptop screen once the taskbar and
the title bar are counted, which pushes the composer's bottom off-screen. The window asks for its
preferred size and takes whatever part of it the screen's available area can hold.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize

# Wide enough for the Chat page with its settings panel open (conversations, messages, settings).
PREFERRED_SIZE = QSize(1280, 800)
MINIMUM_SIZE = QSize(900, 600)
# Room for the window frame, which is not known before the window is first shown: a title bar
# and thin borders on the usual desktops.
FRAME_ALLOWANCE = QSize(16, 40)


def first_geometry(
    available: QRect, preferred: QSize = PREFERRED_SIZE, frame: QSize = FRAME_ALLOWANCE
) -> QRect:
    """The client area of a window of ``preferred`` size shrunk to ``available``, centred on it.

    Args:
        available: the screen's available geometry (without taskbars and docks).
        preferred: the size wanted on a large screen.
        frame: room kept for the window frame around the client area.
    """
    width = max(1, min(preferred.width(), available.width() - frame.width()))
    height = max(1, min(preferred.height(), available.height() - frame.height()))
    left = available.left() + (available.width() - width) // 2
    # the title bar sits above the client area: centre the framed window, not the client area
    side = frame.width() // 2
    top = available.top() + frame.height() - side
    top += max(0, (available.height() - frame.height() - height) // 2)
    return QRect(left, top, width, height)


def minimum_size(available: QRect, frame: QSize = FRAME_ALLOWANCE) -> QSize:
    """`MINIMUM_SIZE`, or less on a screen too small for it."""
    return QSize(
        max(1, min(MINIMUM_SIZE.width(), available.width() - frame.width())),
        max(1, min(MINIMUM_SIZE.height(), available.height() - frame.height())),
    )


def fits(client: QRect, available: QRect, frame: QSize = FRAME_ALLOWANCE) -> bool:
    """Whether a client area and its frame lie inside ``available``."""
    side = frame.width() // 2
    framed = client.adjusted(-side, -(frame.height() - side), side, side)
    return available.contains(framed)
