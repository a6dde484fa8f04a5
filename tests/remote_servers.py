"""Servers for the remote-chat tests: llama-cpp-python's own server and a second
``slmdesk serve`` (both real processes on the tiny model), and a fake server that misbehaves.

The fixtures at the end (`llama_server`, `slmdesk_server`, `fake`) are shared by every test
module through ``pytest_plugins`` in tests/conftest.py; the real servers start once per module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

API_KEY = "sk-remote-test-42"
START_TIMEOUT = 180.0  # a loaded two-core machine can be slow to import a server's packages


@dataclass
class RunningServer:
    """A server process and the address to give slmdesk."""

    process: subprocess.Popen[str]
    url: str
    model: str
    log: Path


def free_port() -> int:
    """A port nothing listens on right now (and, just after, nothing will)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_models(proc: subprocess.Popen[str], url: str, key: str | None, log: Path) -> str:
    """Wait until ``GET url/v1/models`` answers; returns the first model's id."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()[-3000:]}")
        try:
            resp = httpx2.get(f"{url}/v1/models", headers=headers, timeout=2.0)
            if resp.status_code == 200:
                return str(resp.json()["data"][0]["id"])
        except httpx2.TransportError:
            pass
        threading.Event().wait(0.1)  # poll interval while the process starts
    raise AssertionError(f"the server did not answer: {log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen[str]) -> None:
    """Terminate a server and wait for it (kill when it hangs)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def _running(proc: subprocess.Popen[str], url: str, key: str | None, log: Path) -> RunningServer:
    """The started server once it lists its model; stopped when it never does."""
    try:
        name = wait_for_models(proc, url, key, log)
    except BaseException:
        stop_process(proc)
        raise
    return RunningServer(proc, url, name, log)


def start_llama_server(model: Path, workdir: Path, key: str | None = None) -> RunningServer:
    """``python -m llama_cpp.server`` on a free loopback port."""
    port = free_port()
    log = workdir / f"llama-server-{port}.log"
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--model_alias", "tiny",
    ]  # fmt: skip
    if key:
        args += ["--api_key", key]
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    return _running(proc, url, key, log)


def start_slmdesk_serve(
    model: Path, home: Path, workdir: Path, key: str | None = None
) -> RunningServer:
    """``python -m slmdesk serve`` on a free port, with ``model`` in its own library as tiny."""
    env = dict(os.environ, SLMDESK_HOME=str(home))
    subprocess.run(
        [sys.executable, "-m", "slmdesk", "models", "import", str(model), "--name", "tiny"],
        env=env, check=True, capture_output=True, timeout=START_TIMEOUT,
    )  # fmt: skip
    log = workdir / "slmdesk-serve.log"
    args = [sys.executable, "-m", "slmdesk", "serve", "--model", "tiny", "--port", "0", "--json"]
    if key:
        args += ["--api-key", key]
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        stop_process(proc)
        raise AssertionError(f"slmdesk serve did not start: {log.read_text()[-3000:]}")
    url = json.loads(line)["url"].removesuffix("/v1")
    return _running(proc, url, key, log)


# -- a server that misbehaves on purpose --------------------------------------------------------


@dataclass
class FakeServer:
    """A tiny local HTTP server; ``mode`` picks its behaviour for the next requests."""

    mode: str = "ok"
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, object]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream_start(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()

        def _event(self, data: str) -> None:
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        def do_GET(self) -> None:
            mode = fake.mode
            if mode == "models-huge":
                self._send(200, b'{"data": [' + b'{"id": "x"},' * 200_000 + b'{"id": "y"}]}')
            elif mode == "models-garbage":
                self._send(200, b"<html>hello</html>", "text/html")
            elif mode == "stall":
                fake.release.wait(60)
                self._send(200, b'{"data": []}')
            else:
                self._send(200, b'{"object": "list", "data": [{"id": "fake-model"}, {"id": 3}]}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"),
                 "body": json.loads(self.rfile.read(length) or b"{}")}
            )  # fmt: skip
            mode = fake.mode
            try:
                if mode.startswith("status-"):
                    code = int(mode.split("-")[1])
                    self._send(code, b'{"error": {"message": "nope\\u001b[31m red"}}')
                elif mode == "garbage":
                    self._stream_start()
                    self._event("this is not json")
                elif mode == "long-line":
                    self._stream_start()
                    self.wfile.write(b"data: " + b"x" * 600_000)
                    self.wfile.flush()
                elif mode == "stall":
                    fake.release.wait(60)
                elif mode == "stall-after-one":
                    self._stream_start()
                    self._event(_chunk("Hello"))
                    fake.release.wait(60)
                elif mode == "cut":
                    self._stream_start()
                    self._event(_chunk("Hel"))
                elif mode == "endless":
                    self._stream_start()
                    while not fake.release.is_set():
                        self._event(_chunk("word "))
                elif mode == "json":
                    body = {
                        "choices": [
                            {"message": {"role": "assistant", "content": "whole"},
                             "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
                    }  # fmt: skip
                    self._send(200, json.dumps(body).encode())
                else:
                    self._stream_start()
                    for word in ("Hello", " there", "!"):
                        self._event(_chunk(word))
                    self._event(_chunk("", "stop"))
                    self._event("[DONE]")
            except (BrokenPipeError, ConnectionResetError):
                fake.closed.set()
            self.close_connection = True

    return Handler


def _chunk(text: str, finish: str | None = None) -> str:
    return json.dumps(
        {"object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    )  # fmt: skip


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (what the tests do on purpose) is not news


def run_fake_server() -> Iterator[FakeServer]:
    """Serve a `FakeServer` on a free loopback port until the generator is closed."""
    fake = FakeServer()
    httpd = _QuietServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="fake-openai-server", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_server(
    tiny_model_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """``python -m llama_cpp.server`` on the tiny model, for one test module."""
    server = start_llama_server(tiny_model_source, tmp_path_factory.mktemp("llama-server"))
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def slmdesk_server(
    tiny_model_source: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A second ``slmdesk serve`` on the tiny model that wants `API_KEY`, for one test module."""
    work = tmp_path_factory.mktemp("slmdesk-serve")
    server = start_slmdesk_serve(tiny_model_source, work / "home", work, key=API_KEY)
    yield server
    stop_process(server.process)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    """A misbehaving server, told what to do per test."""
    yield from run_fake_server()
