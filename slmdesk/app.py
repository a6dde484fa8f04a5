"""GUI composition root: builds the application, its pages and controllers, and shuts them down.

Pages get their collaborators (library, task runner, settings store) passed in, never the whole
app, so each can be built alone in a test.

Building the window does no blocking work on the GUI thread: the conversation database is opened
on the task pool (the chat list appears when it is ready), the llama.cpp version is read there too,
and settings live in memory and are saved on the settings store's own thread.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QStackedWidget, QWidget

from slmdesk import __version__
from slmdesk.chat.conversations import ConversationStore
from slmdesk.common import settings
from slmdesk.common.logs import setup_logging
from slmdesk.common.settings import SettingsStore
from slmdesk.models.library import Library
from slmdesk.ui.chat.controller import ChatController
from slmdesk.ui.chat.server_notice import ServerChatNotice
from slmdesk.ui.chat.view import ChatView
from slmdesk.ui.discover.controller import DiscoverController
from slmdesk.ui.discover.view import DiscoverView
from slmdesk.ui.library.controller import LibraryController
from slmdesk.ui.library.view import LibraryView
from slmdesk.ui.main_window import MainWindow
from slmdesk.ui.optimize.controller import OptimizeController
from slmdesk.ui.optimize.fit_controller import FitController
from slmdesk.ui.optimize.view import OptimizeView
from slmdesk.ui.placeholder import ComingPage
from slmdesk.ui.runtime.inference import InferenceClient
from slmdesk.ui.runtime.jobs import SHUTDOWN_BUDGET, Deadline, Stoppable, wait_all
from slmdesk.ui.runtime.local_server import LocalServer
from slmdesk.ui.runtime.shared_inference import SharedInference
from slmdesk.ui.runtime.tasks import TaskRunner
from slmdesk.ui.server_indicator import ServerIndicator
from slmdesk.ui.settings.page import SettingsPage
from slmdesk.ui.settings.server_section import ServerSection
from slmdesk.ui.theme import apply_theme, icon
from slmdesk.ui.welcome import WelcomeController, WelcomeView

log = logging.getLogger("slmdesk.app")


@dataclass
class AppParts:
    """Everything the window is made of, for shutdown and for tests."""

    window: MainWindow
    library: Library
    tasks: TaskRunner
    library_controller: LibraryController
    settings: SettingsStore
    chat_controller: ChatController | None = None
    discover_controller: DiscoverController | None = None
    welcome_controller: WelcomeController | None = None
    local_server: LocalServer | None = None
    controllers: list[QObject] = field(default_factory=list)
    _done: bool = False
    _stuck: list[str] = field(default_factory=list)

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> list[str]:
        """Stop every worker within ``budget`` seconds in total. Idempotent.

        Parts that follow the job model's `Stoppable` protocol (the task pool, the chat's and
        the optimizer's threads) are all asked to stop first and then waited for together;
        other controllers' own ``shutdown()`` runs in between. Returns what was still running
        when the budget ran out (the caller ends the process rather than wait); a second
        call returns the same without waiting again.
        """
        if self._done:
            return list(self._stuck)
        self._done = True
        deadline = Deadline(budget)
        stoppable: list[Stoppable] = []
        others = []
        for controller in self.controllers:
            if hasattr(controller, "request_stop") and hasattr(controller, "wait_stopped"):
                stoppable.append(controller)  # type: ignore[arg-type]
            elif callable(getattr(controller, "shutdown", None)):
                others.append(controller)
        stoppable.append(self.tasks)
        for part in stoppable:
            part.request_stop()
        for controller in others:
            controller.shutdown()  # type: ignore[attr-defined]
        if not self.settings.flush(deadline.remaining()):
            log.error("settings were not saved in time")
        self._stuck = wait_all(stoppable, deadline)
        return list(self._stuck)


def build_window(
    library: Library | None = None,
    tasks: TaskRunner | None = None,
    autoload_model: bool = True,
    settings_store: SettingsStore | None = None,
) -> AppParts:
    """Create the main window and wire its pages. Needs a QApplication.

    Args:
        library: the model library (default: the user's).
        tasks: the task pool (default: a new one).
        autoload_model: load the last used model (or the only one) when the window opens.
        settings_store: the user's settings (default: the store of the settings file).
    """
    library = library or Library()
    tasks = tasks or TaskRunner()
    prefs = settings_store if settings_store is not None else settings.store()
    library_view = LibraryView()
    library_controller = LibraryController(library_view, library, tasks)
    settings_page = SettingsPage(prefs, tasks, library)
    # Not opened here: the chat controller opens it on the task pool.
    store = ConversationStore(connect=False)
    chat_view = ChatView()
    chat_controller = ChatController(
        chat_view, store, InferenceClient(store), library, tasks, autoload=autoload_model
    )
    chat_page: QWidget = chat_view
    welcome_view = WelcomeView()
    welcome = WelcomeController(welcome_view, tasks)
    chat_stack = QStackedWidget()
    chat_stack.addWidget(chat_page)
    chat_stack.addWidget(welcome_view)
    discover_view = DiscoverView()
    discover_controller = DiscoverController(discover_view, tasks, library)
    optimize_view = OptimizeView()
    optimize_controller = OptimizeController(optimize_view, library, tasks)
    fit_controller = FitController(optimize_view.fit_view, tasks)
    pages: dict[str, QWidget] = {
        "Chat": chat_stack,
        "Library": library_view,
        "Discover": discover_view,
        "Optimize": optimize_view,
        "Settings": settings_page,
    }
    window = MainWindow(pages, prefs)
    parts = AppParts(window, library, tasks, library_controller, prefs, chat_controller)
    # The local server shares the chat's inference thread and model (one model in memory).
    shared = SharedInference(chat_controller.client, library)
    local_server = LocalServer(shared, library, tasks)
    settings_page.add_section(ServerSection(prefs, tasks, local_server, shared))
    ServerIndicator(window, local_server)
    ServerChatNotice(chat_controller, shared)
    parts.local_server = local_server
    parts.controllers.append(local_server)  # asked to stop before the chat's thread
    parts.controllers.append(settings_page)
    parts.controllers.append(library_controller)
    library_controller.source_poller.start()
    parts.controllers.append(discover_controller)
    parts.controllers.append(optimize_controller)
    parts.controllers.append(fit_controller)
    # Every page learns about models from the Library page's listing, and that listing follows
    # the library's own change events (imports, downloads, optimized models): one scan a change.
    library_controller.models_changed.connect(optimize_controller.set_models)
    library_controller.models_changed.connect(fit_controller.set_models)
    library_controller.models_changed.connect(discover_controller.set_models)
    parts.welcome_controller = welcome

    local_models: list = [False]  # whether the library has a usable model

    def on_models(entries: list) -> None:
        local_models[0] = any(e.status == "ok" for e in entries)
        # saved servers are enough to chat: the welcome page is for no model at all
        empty = not local_models[0] and not chat_controller.has_connections
        chat_stack.setCurrentWidget(welcome_view if empty else chat_stack.widget(0))
        if empty:
            welcome.check_starter()

    library_controller.models_changed.connect(on_models)
    chat_controller.remote_models_changed.connect(
        lambda: on_models([]) if not local_models[0] else None
    )
    welcome.import_requested.connect(library_controller.import_with_dialog)
    welcome.browse_requested.connect(lambda: window.show_page("Discover"))

    def download_starter(model: object) -> None:
        discover_controller.download(model)  # type: ignore[arg-type]
        window.show_page("Discover")

    welcome.download_requested.connect(download_starter)
    parts.discover_controller = discover_controller
    parts.controllers.append(chat_controller)
    library_controller.models_changed.connect(chat_controller.set_models)

    def chat_with(name: str) -> None:
        window.show_page("Chat")
        if parts.chat_controller is not None:
            # a model newer than the listing is resolved
            parts.chat_controller.open_model(name)

    library_controller.chat_requested.connect(chat_with)
    # a bound slot of a GUI-thread object: delivered queued, on the GUI thread
    chat_controller.client.loaded.connect(settings_page.on_model_loaded)
    settings_page.connections.changed.connect(chat_controller.refresh_remote_models)
    discover_controller.chat_requested.connect(chat_with)
    optimize_controller.chat_requested.connect(chat_with)
    fit_controller.chat_requested.connect(chat_with)

    def chat_unavailable(message: str) -> None:
        """The database cannot be opened: the Chat page says why, and its workers stop."""
        if parts.chat_controller is None:
            return
        parts.chat_controller = None
        local_server.request_stop()  # its requests would wait for the chat's thread forever
        library_controller.models_changed.disconnect(chat_controller.set_models)
        settings_page.connections.changed.disconnect(chat_controller.refresh_remote_models)
        parts.controllers.remove(chat_controller)
        chat_controller.shutdown()
        notice = ComingPage("Chat is unavailable", message)
        showing = chat_stack.currentWidget() is chat_page
        chat_stack.insertWidget(0, notice)
        chat_stack.removeWidget(chat_page)
        if showing:
            chat_stack.setCurrentWidget(notice)

    chat_controller.store_failed.connect(chat_unavailable)
    library_controller.discover_requested.connect(lambda: window.show_page("Discover"))

    def show_in_library(name: str) -> None:
        window.show_page("Library")
        library_controller.view.select_name(name)

    discover_controller.library_requested.connect(show_in_library)
    settings_page.theme_changed.connect(_reapply_theme)
    if settings_page.models_folder is not None:  # a new folder lists what it holds
        settings_page.models_folder.folder_changed.connect(lambda _f: library_controller.refresh())
    settings_page.save_problem.connect(window.show_problem)
    window.on_shutdown(parts.shutdown)
    library_controller.refresh()
    return parts


def _reapply_theme(choice: str) -> None:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app, choice)


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with slmdesk's names, icon and theme."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("slmdesk")
    app.setApplicationDisplayName("slmdesk")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("slmdesk")
    app.setDesktopFileName("slmdesk")
    app.setWindowIcon(icon("app"))
    apply_theme(app, str(settings.get("theme")))
    return app


def run_app(install_starter: bool = True) -> int:
    """Open the window and run until it closes; returns the exit code."""
    setup_logging()
    app = make_application()
    parts = build_window()
    if install_starter:
        # install_starter checks the library first (on the pool) and does nothing when not needed
        parts.tasks.run(
            parts.library.install_starter,  # announced by the library like any other model
            None,
            lambda exc: log.warning("starter model not installed: %s", exc),
            name="starter",
        )
    parts.window.show()
    if os.environ.get("SLMDESK_EXIT_WHEN_IDLE"):
        _exit_when_idle(app)
    code = app.exec()
    stuck = parts.shutdown()
    if stuck:
        # A thread stuck in a long native call cannot be interrupted; waiting for it would keep
        # a closed window's process alive. Its work is abandoned (files are written to temporary
        # names, so nothing half-written is left in place).
        log.warning("exiting without waiting for: %s", ", ".join(stuck))
        logging.shutdown()
        os._exit(int(code))
    return int(code)


def _exit_when_idle(app: QApplication) -> None:
    """Print a timestamp and quit once the shown window's event loop is idle.

    The stopwatch of ``bench/startup.py`` (time from process start to an interactive window).
    """
    import time

    from PySide6.QtCore import QTimer

    def done() -> None:
        print(f"slmdesk-idle {time.time():.6f}", flush=True)
        app.quit()

    QTimer.singleShot(0, done)
