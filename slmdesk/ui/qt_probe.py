"""The Qt probe of `slmdesk doctor`: run in a child process, it opens a small window, renders the
app icon and prints one JSON line, so a missing system library fails the child, not the caller."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence


def qt_probe() -> int:
    """Child entry: open a small window, render the app icon, print one JSON line."""
    import PySide6
    from PySide6.QtCore import qVersion
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QLabel

    from slmdesk.common.resources import resource_path

    app = QApplication([sys.argv[0]])
    window = QLabel("slmdesk doctor")
    window.resize(240, 80)
    window.show()
    app.processEvents()
    icon = QIcon(str(resource_path("icons", "app.svg")))
    pixmap = icon.pixmap(64, 64)
    answer = {
        "qt": qVersion(),
        "pyside6": PySide6.__version__,
        "platform": app.platformName(),
        "window_shown": window.isVisible(),
        "svg_icon": not pixmap.isNull(),
    }
    window.close()
    print(json.dumps(answer), flush=True)
    return 0


def frozen_dispatch(argv: Sequence[str] | None = None) -> None:
    """In a frozen app: if started as the Qt probe child, run it and exit."""
    from slmdesk.diagnostics.doctor import QT_PROBE_FLAG

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [QT_PROBE_FLAG]:
        sys.exit(qt_probe())


if __name__ == "__main__":
    frozen_dispatch()
    sys.exit(2)
