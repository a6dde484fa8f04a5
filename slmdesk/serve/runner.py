"""Run the API with uvicorn on a socket slmdesk binds itself (so errors are sentences).

`ServeConfig.check` enforces the safe default: loopback only, unless an API key is given.
`Server.run` blocks (the command line); `Server.start` / `Server.stop` run it on a thread
(tests, and the window, which passes its own `Backend` so the server uses the window's inference
thread and model instead of starting its own). The API key is never logged or printed.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.library import Library
from slmdesk.serve.app import create_app, guarded
from slmdesk.serve.backend import Backend
from slmdesk.serve.guards import MAX_BODY_BYTES
from slmdesk.serve.inference import InferenceService, ModelHost

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
HTTP_THREAD = "slmdesk-serve-http"


class ExposureError(SlmdeskError):
    """Binding beyond this computer without an API key (bad usage: exit 2)."""


class BindError(SlmdeskError):
    """The address cannot be listened on (in use, not an address of this computer...)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this computer."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """What `slmdesk serve` was asked for."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = field(default=None, repr=False)  # never shown in a log or repr
    model: str | None = None
    max_body: int = MAX_BODY_BYTES
    # Seconds open connections get to finish once stopping (the window's budget is 2 s in all).
    shutdown_timeout: int = 2

    def check(self) -> None:
        """Refuse another interface without an API key.

        Raises:
            ExposureError: ``host`` is not loopback and no key is set.
        """
        if not is_loopback(self.host) and not self.api_key:
            raise ExposureError(
                f"Listening on {self.host} makes the models reachable from other computers; "
                "give --api-key KEY to allow it (or keep the default 127.0.0.1)."
            )

    @property
    def exposed(self) -> bool:
        """Whether other computers can reach the server."""
        return not is_loopback(self.host)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise BindError(f"{host} is not a known host name or address.") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"Port {port} on {host} is already in use; choose another with --port."
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise BindError(f"{host} is not an address of this computer.") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise BindError(
                f"Not allowed to listen on port {port}; choose one above 1024."
            ) from None
        raise
    sock.set_inheritable(True)
    return sock


class Server:
    """The API on one socket, with its own inference thread and model unless given a backend."""

    def __init__(
        self, config: ServeConfig, library: Library | None = None, backend: Backend | None = None
    ) -> None:
        """Check ``config`` and bind its socket (raises ExposureError or BindError).

        Args:
            config: address, key and limits.
            library: where models are named from (default: the user's).
            backend: who runs the work (default: an own `InferenceService`, started with the
                server and stopped with it); a given backend is neither started nor stopped.
        """
        import uvicorn

        config.check()
        self.config = config
        self.library = library or Library()
        self.service: InferenceService | None = None
        if backend is None:
            self.service = InferenceService(ModelHost(self.library))
        self.backend: Backend = backend if backend is not None else self.service  # type: ignore[assignment]
        self._socket = _bind(config.host, config.port)
        api = create_app(self.backend, self.library, config.max_body)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                guarded(api, config.api_key, config.max_body),
                lifespan="off",
                log_config=None,
                log_level="warning",
                timeout_graceful_shutdown=max(1, config.shutdown_timeout),
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """The API's base URL, such as ``http://127.0.0.1:8765/v1``."""
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    def preload(self) -> str | None:
        """Load the configured model now, so a bad name fails before serving.

        Raises:
            SlmdeskError: the model is unknown or cannot be loaded.
        """
        if not self.config.model or self.service is None:
            return None
        from slmdesk.serve.errors import ApiError

        try:
            return self.service.preload(self.config.model)
        except ApiError as exc:
            raise SlmdeskError(exc.message) from None

    def run(self) -> None:
        """Serve until interrupted (Ctrl+C); blocks."""
        if self.service is not None:
            self.service.start()
        try:
            self._uvicorn.run(sockets=[self._socket])
        finally:
            self.close()

    def start(self, timeout: float = 30.0) -> None:
        """Serve on a thread; returns once the server accepts connections."""
        if self.service is not None:
            self.service.start()
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._socket]},
            name=HTTP_THREAD,
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started and self._thread_alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # uvicorn offers no event for "listening"
        if not self._uvicorn.started:
            self.stop()
            raise SlmdeskError("The server did not start.")

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (streams end), then the inference thread; frees the model."""
        self.request_stop()
        self.wait_stopped(timeout)

    def request_stop(self) -> None:
        """Ask the server to stop without waiting (its loop checks about every 0.1 s)."""
        self._uvicorn.should_exit = True

    def wait_stopped(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the server thread, then `close`; True when the
        thread ended (a thread still running is left to end by itself: it is a daemon)."""
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, timeout))
            if thread.is_alive():
                return False
            self._thread = None
        self.close()
        return True

    def close(self) -> None:
        """Free the socket, and the own inference thread and model."""
        if self.service is not None:
            self.service.stop()
        self._socket.close()

    def status(self) -> dict[str, Any]:
        """What the server is doing, for a status line."""
        service = self.service
        return {
            "url": self.base_url,
            "model": self.backend.loaded_name(),
            "served": service.served if service is not None else None,
            "pending": service.pending() if service is not None else None,
        }
