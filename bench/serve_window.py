"""The local server run from the window: GUI stalls while a client streams through it.

``python -m bench serve_window [--requests N] [--tokens N]``

The real window is shown (offscreen unless DISPLAY is set) with the Gemma 3 270M starter loaded
in the chat; the server is started with the Settings page's switch logic (`LocalServer`), so its
requests run on the chat's own inference thread. A client thread streams ``--requests``
completions of ``--tokens`` tokens each through the official ``openai`` client while a 5 ms timer
on the GUI thread records the gaps between its ticks (as in ``bench/chat_view.py``).

Figures: GUI gap p99 (target <= 20 ms) and max, tokens per second the client received, and the
machine's load average while it ran (the benchmark shares the machine with whatever else runs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from typing import Any

from bench.chat_view import _percentile, _wait
from bench.common import print_figures, save_results
from bench.serve import PROMPT, _gemma_path

MODEL = "gemma"


class _Ticks:
    """Gaps between the ticks of a 5 ms timer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now


def _stream(url: str, requests: int, tokens: int, out: dict[str, Any]) -> None:
    """The client: ``requests`` streamed completions, one after the other."""
    import openai

    received = 0
    first = last = None
    with openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=600) as client:
        for _ in range(requests):
            stream = client.completions.create(
                model=MODEL, prompt=PROMPT, max_tokens=tokens, temperature=0.0, stream=True
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].text:
                    now = time.perf_counter()
                    first = first if first is not None else now
                    last = now
                    received += 1
    out.update(chunks=received, seconds=(last - first) if first and last else 0.0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serve_window")
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args(argv)

    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["SLMDESK_HOME"] = tempfile.mkdtemp(prefix="slmdesk-bench-serve-window-")
    from slmdesk.app import build_window, make_application
    from slmdesk.common import settings
    from slmdesk.models.library import Library

    Library().import_model(_gemma_path(), copy=False, name=MODEL)
    settings.update(threads=2)
    app = make_application([])
    parts = build_window(autoload_model=False)
    parts.window.show()
    parts.window.show_page("Settings")  # the page whose status line follows the server
    controller, server = parts.chat_controller, parts.local_server
    assert controller is not None and server is not None
    controller.load_model(MODEL)
    _wait(app, lambda: controller.loaded_name == MODEL, 120)
    server.start(0, False, None)
    _wait(app, lambda: server.running is not None, 60)
    assert server.running is not None
    url = server.running.url

    warm: dict[str, Any] = {}
    _run_client(app, url, 1, 8, warm)
    ticks = _Ticks()
    out: dict[str, Any] = {}
    load_before = os.getloadavg()
    ticks.timer.start()
    _run_client(app, url, args.requests, args.tokens, out)
    ticks.timer.stop()
    load_after = os.getloadavg()
    served = server.shared.served
    parts.window.close()
    stuck = parts.shutdown()

    gaps_ms = [g * 1000 for g in ticks.gaps]
    figures = {
        "gui_gap_p99_ms": round(_percentile(gaps_ms, 0.99), 1),
        "gui_gap_max_ms": round(max(gaps_ms), 1) if gaps_ms else None,
        "gui_ticks": len(gaps_ms),
        "client_chunks": out.get("chunks"),
        "client_chunks_per_second": round(out["chunks"] / out["seconds"], 1)
        if out.get("seconds")
        else None,
        "requests": args.requests,
        "tokens_per_request": args.tokens,
        "requests_served": served,
        "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpu_count": os.cpu_count(),
        "stuck_at_shutdown": stuck,
    }
    print_figures(
        "Local server from the window (Gemma 3 270M, 2 threads, streamed completions)",
        [
            (
                "GUI gap p99 while the server streams",
                f"{figures['gui_gap_p99_ms']:.1f} ms",
                "<= 20 ms",
            ),
            ("GUI gap max", f"{figures['gui_gap_max_ms'] or 0:.1f} ms", ""),
            (
                "chunks/s received by the client",
                f"{figures['client_chunks_per_second'] or 0:.1f}",
                f"{figures['client_chunks']} chunks",
            ),
            (
                "load average (1 min) before/after",
                f"{load_before[0]:.2f}/{load_after[0]:.2f}",
                f"{os.cpu_count()} CPUs",
            ),
        ],
    )
    print(f"  results: {save_results('serve_window', figures)}")
    return 0


def _run_client(app: Any, url: str, requests: int, tokens: int, out: dict[str, Any]) -> None:
    """Stream on a client thread while the GUI thread keeps running its event loop."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _stream(url, requests, tokens, out)
        except BaseException as exc:  # reported on the main thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="bench-client")
    thread.start()
    _wait(app, lambda: not thread.is_alive(), 1800)
    thread.join()
    if errors:
        raise errors[0]
