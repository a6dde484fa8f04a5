"""The local server run from the window: Settings › Local server, the real `openai` client, the
real tiny model on the chat's own inference thread (one model in memory, one thread)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from slmdesk.app import AppParts, build_window
from slmdesk.common import paths
from slmdesk.models.library import Library
from slmdesk.ui.runtime.local_server import NEEDS_KEY
from slmdesk.ui.server_indicator import ServerIndicator
from slmdesk.ui.settings.server_section import ServerSection

openai = pytest.importorskip("openai")

TIMEOUT = 60_000
USER_MODEL = "tiny-llama-F16"
OTHER_MODEL = "tiny-base-F16"


@pytest.fixture
def background() -> Iterator[Callable[..., Future[Any]]]:
    """Run client calls off the GUI thread (a socket connect there would block the window)."""
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-client")
    yield pool.submit
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def window(qtbot, tiny_model: Path, background) -> Iterator[AppParts]:
    """The window with the tiny model loaded in the chat."""
    Library().import_model(tiny_model)
    parts = build_window()
    qtbot.addWidget(parts.window)
    parts.window.show()
    controller = parts.chat_controller
    assert controller is not None
    qtbot.waitUntil(lambda: controller.loaded_name == USER_MODEL, timeout=TIMEOUT)
    yield parts
    parts.window.close()
    parts.shutdown()


def _section(parts: AppParts) -> ServerSection:
    return parts.window.findChild(ServerSection)


def _indicator(parts: AppParts) -> ServerIndicator:
    return parts.window.findChild(ServerIndicator)


def _start(qtbot, parts: AppParts, port: int = 0) -> str:
    section = _section(parts)
    parts.window.show_page("Settings")
    section.port.setValue(port)
    qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
    server = parts.local_server
    assert server is not None
    qtbot.waitUntil(lambda: server.running is not None, timeout=TIMEOUT)
    return section.address.text()


def _client(url: str, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120)


def _wait(qtbot, future: Future[Any]) -> Any:
    qtbot.waitUntil(future.done, timeout=TIMEOUT)
    return future.result()


def test_switch_starts_the_server_lists_models_and_stop_frees_the_port(
    qtbot, window, background, gui_guard
) -> None:
    parts = window
    section = _section(parts)
    url = _start(qtbot, parts)
    port = parts.local_server.running.port
    assert url == f"http://127.0.0.1:{port}/v1"
    assert _indicator(parts).text() == f"Server on :{port}"
    qtbot.waitUntil(lambda: _indicator(parts).label.isVisible(), timeout=TIMEOUT)  # on screen
    assert "Idle" in section.status.text()

    def models() -> list[dict[str, Any]]:
        with _client(url) as client:
            return [m.to_dict() for m in client.models.list()]

    listed = _wait(qtbot, background(models))
    assert [(m["id"], m["loaded"]) for m in listed] == [(USER_MODEL, True)]

    qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: parts.local_server.running is None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not parts.local_server.busy, timeout=TIMEOUT)
    assert section.address.text() == "not running"
    assert _indicator(parts).text() == ""
    with gui_guard.allowed(), socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again
    assert parts.settings.get("server_enabled") is False


def test_a_chat_turn_and_an_api_request_at_the_same_time_both_finish(
    qtbot, window, background, gui_guard
) -> None:
    parts = window
    controller = parts.chat_controller
    url = _start(qtbot, parts)
    controller.view.settings_panel.max_tokens.setValue(24)
    shared = parts.local_server.shared

    def api_reply() -> tuple[str, str | None]:
        with _client(url) as client:
            stream = client.chat.completions.create(
                model=USER_MODEL,
                messages=[{"role": "user", "content": "Hello from a script"}],
                max_tokens=24,
                stream=True,
            )
            text, finish = "", None
            for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    finish = chunk.choices[0].finish_reason or finish
            return text, finish

    parts.window.show_page("Chat")
    request = background(api_reply)
    controller.view.composer.setPlainText("Hello from the window")
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)
    text, finish = _wait(qtbot, request)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    assert finish in ("stop", "length") and text
    widgets = controller.view.messages.widgets()
    assert [w.role for w in widgets] == ["user", "assistant"]
    assert widgets[1].text
    assert shared.served == 1
    qtbot.waitUntil(lambda: "1 requests served" in _section(parts).status.text(), timeout=TIMEOUT)
    # one model in memory, on the chat's thread: the server started no engine or thread
    assert parts.local_server._server is not None and parts.local_server._server.service is None
    assert shared.host.engine is controller.client.worker.engine


def _long_stream(url: str, model: str, started: Any, release: Any) -> str:
    """Stream a long reply; after the first piece, wait for ``release``, then close early."""
    with _client(url) as client:
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Write a very long story"}],
            max_tokens=1500,
            temperature=1.5,
            stream=True,
        )
        text = ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
                started.set()
                assert release.wait(120)
                break
        stream.close()  # the client goes away mid-stream
        return text


def test_closing_the_client_mid_stream_stops_generation(qtbot, window, background) -> None:
    import threading

    parts = window
    url = _start(qtbot, parts)
    shared = parts.local_server.shared
    started, release = threading.Event(), threading.Event()
    request = background(_long_stream, url, USER_MODEL, started, release)
    qtbot.waitUntil(lambda: started.is_set() or request.done(), timeout=TIMEOUT)
    assert started.is_set(), request.result()
    section = _section(parts)
    qtbot.waitUntil(
        lambda: f"Answering chat completion for {USER_MODEL}" in section.status.text(),
        timeout=TIMEOUT,
    )
    release.set()
    assert _wait(qtbot, request)
    qtbot.waitUntil(lambda: shared.served == 1, timeout=TIMEOUT)
    result = shared.last.result
    assert result.timings.finish_reason == "cancelled"
    assert result.timings.generated_tokens < 1500
    qtbot.waitUntil(lambda: "Idle" in section.status.text(), timeout=TIMEOUT)


def test_a_request_for_another_model_makes_the_chat_wait_then_reload(
    qtbot, window, background, tiny_model_no_template, gui_guard
) -> None:
    import threading

    parts = window
    controller = parts.chat_controller
    with gui_guard.allowed():
        Library().import_model(tiny_model_no_template)
    url = _start(qtbot, parts)
    started, release = threading.Event(), threading.Event()
    request = background(_long_stream, url, OTHER_MODEL, started, release)
    qtbot.waitUntil(lambda: started.is_set() or request.done(), timeout=TIMEOUT)
    assert started.is_set(), request.result()
    # The window learns of the request through a queued signal: wait until it shows it.
    answering = f"for {OTHER_MODEL}"
    qtbot.waitUntil(lambda: answering in _section(parts).status.text(), timeout=TIMEOUT)
    parts.window.show_page("Chat")
    controller.view.settings_panel.max_tokens.setValue(8)
    controller.view.composer.setPlainText("Are you there?")
    qtbot.keyClick(controller.view.composer, Qt.Key.Key_Return)
    notice = controller.view.notice
    assert notice.text() == (
        f"The local server is answering a request with {OTHER_MODEL}; your reply starts after it."
    )
    assert notice.isVisible()
    release.set()  # the client leaves: its request ends, the chat's turn runs
    _wait(qtbot, request)
    qtbot.waitUntil(lambda: not controller.generating, timeout=TIMEOUT)
    assert notice.text() == (
        f"Loading {USER_MODEL} again for your chat: the local server had loaded another model."
    )
    assert [w.role for w in controller.view.messages.widgets()] == ["user", "assistant"]
    assert controller.client.worker.engine.loaded.path.name == "tiny-llama-F16.gguf"
    assert parts.local_server.shared.loaded_name() == USER_MODEL


def test_all_interfaces_need_a_key_and_show_a_warning(qtbot, window, background, gui_guard) -> None:
    parts = window
    section = _section(parts)
    parts.window.show_page("Settings")
    section.port.setValue(0)
    section.expose.setChecked(True)
    assert section.warning.isVisible()
    qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
    assert section.error.text() == NEEDS_KEY and section.error.isVisible()
    assert not section.switch.isChecked()
    assert parts.local_server.running is None and not parts.local_server.busy

    section.key.setText("sk-window-key-42")
    qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: parts.local_server.running is not None, timeout=TIMEOUT)
    assert not section.error.isVisible()
    assert section.warning.isVisible()
    running = parts.local_server.running
    assert running.exposed
    assert _indicator(parts).text() == f"Server on :{running.port} (other computers allowed)"

    def models(key: str) -> object:
        with _client(running.url, key) as client:
            try:
                return [m.id for m in client.models.list()]
            except openai.AuthenticationError:
                return "refused"

    assert _wait(qtbot, background(models, "wrong")) == "refused"
    assert _wait(qtbot, background(models, "sk-window-key-42")) == [USER_MODEL]
    qtbot.waitUntil(lambda: parts.tasks.idle, timeout=TIMEOUT)
    with gui_guard.allowed():
        key_file = paths.server_key_path()
        assert key_file.read_text(encoding="utf-8") == "sk-window-key-42"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert parts.settings.get("server_expose") is True
    assert "sk-window-key-42" not in repr(parts.settings.load())


def test_a_port_in_use_is_a_sentence(qtbot, window, gui_guard) -> None:
    parts = window
    section = _section(parts)
    with gui_guard.allowed():
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
    try:
        port = busy.getsockname()[1]
        parts.window.show_page("Settings")
        section.port.setValue(port)
        qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(section.error.isVisible, timeout=TIMEOUT)
        assert section.error.text() == (
            f"Port {port} on 127.0.0.1 is already in use; choose another in the Port field."
        )
        assert parts.local_server.running is None and not section.switch.isChecked()
    finally:
        busy.close()


def test_closing_the_window_stops_the_server_within_the_budget(qtbot, window) -> None:
    parts = window
    _start(qtbot, parts)
    parts.window.close()
    assert parts.shutdown() == []


def test_a_server_left_on_starts_with_the_window(qtbot, tiny_model: Path, background) -> None:
    from slmdesk.common import settings

    Library().import_model(tiny_model)
    settings.update(server_enabled=True, server_port=0)
    assert settings.flush()
    parts = build_window()
    qtbot.addWidget(parts.window)
    parts.window.show()
    try:
        server = parts.local_server
        qtbot.waitUntil(lambda: server.running is not None, timeout=TIMEOUT)
        assert _section(parts).switch.isChecked()
        assert _section(parts).switch.text() == "Stop server"
    finally:
        parts.window.close()
        assert parts.shutdown() == []


def test_a_bad_key_is_a_sentence(qtbot, window) -> None:
    parts = window
    section = _section(parts)
    parts.window.show_page("Settings")
    section.key.setText(" key with spaces around ")
    qtbot.mouseClick(section.switch, Qt.MouseButton.LeftButton)
    assert section.error.text() == (
        "The API key must be 1 to 256 printable characters without spaces around it."
    )
    assert not section.switch.isChecked() and parts.local_server.running is None
