"""The Discover page's keyboard and screen-reader access with real content from the local Hub:
search results, a repository's files with their Download buttons, a finished download's row."""

from __future__ import annotations

from focus_walk import page_problems
from PySide6.QtWidgets import QApplication, QPushButton

from slmdesk.app import build_window

TIMEOUT = 60_000


def test_discover_with_results_and_a_download_is_named_and_reachable(qtbot, local_hub) -> None:
    parts = build_window(autoload_model=False)
    window = parts.window
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    try:
        window.show_page("Discover")
        controller = parts.discover_controller
        assert controller is not None
        view = controller.view
        view.query.setText("tiny")
        controller.search()
        qtbot.waitUntil(lambda: view.search_button.isEnabled(), timeout=TIMEOUT)
        names = [view.results.item(r, 0).text() for r in range(view.results.rowCount())]
        view.results.selectRow(next(i for i, n in enumerate(names) if "tiny" in n.lower()))
        qtbot.waitUntil(lambda: view.files.rowCount() == 2, timeout=TIMEOUT)
        button = view.files.cellWidget(0, 5).primary
        assert isinstance(button, QPushButton)
        assert button.accessibleName().startswith("Download ")
        with qtbot.waitSignal(controller.model_ready, timeout=TIMEOUT):
            button.click()
        qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
        problems = page_problems(qtbot, window, window.stack.currentWidget(), "Discover")
        assert not problems, "\n".join(problems)
    finally:
        window.close()
        parts.shutdown()
