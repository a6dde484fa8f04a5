"""Chat page benchmark on the Gemma 3 270M starter (2 threads): what the user's window sees.

``python -m bench chat_view [--rounds N] [--tokens N] [--history N]``

Figures, all measured in this run, through the real window (offscreen unless DISPLAY is set),
the real inference thread and the real conversation database:

- decode ratio: tokens/second delivered to the chat view (reply tokens ÷ time from the first to
  the last streamed chunk reaching the message widget) ÷ raw llama.cpp decode speed of the same
  loaded model (a tight ``llama_decode`` + greedy sampler loop, `bench.chat_engine._raw_decode`).
  The two alternate for several rounds; the median ratio is reported. Target >= 0.95.
- GUI stalls while streaming a long reply into a conversation of 200 messages: a 5 ms timer on
  the GUI thread records the gaps between its ticks; p99 <= 20 ms and max <= 50 ms.
- memory: process RSS while chatting minus the model file size (window included). Target
  <= 150 MB.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chat_engine import STORY, _gemma_path, _raw_decode
from bench.common import median, print_figures, save_results

# Short turns: 200 of them fit the model's context, so the long reply sees the whole history.
FILLER = "A short **chat** message with `code`"


def _wait(app: Any, condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        app.processEvents()
        time.sleep(0.002)


class _Probe:
    """Records when chunks reach the view and the gaps of a 5 ms GUI-thread timer."""

    def __init__(self, controller: Any) -> None:
        from PySide6.QtCore import QTimer

        self.controller = controller
        self.chunk_times: list[float] = []
        self.gaps: list[float] = []
        self._last_tick: float | None = None
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        controller.client.worker.chunk.connect(self._on_chunk)

    def _on_chunk(self, _message_id: int, _text: str) -> None:
        self.chunk_times.append(time.perf_counter())

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last_tick is not None:
            self.gaps.append(now - self._last_tick)
            if now - self._last_tick > 0.04 and os.environ.get("SLMDESK_BENCH_TRACE"):
                since = now - (self.chunk_times[0] if self.chunk_times else now)
                print(
                    f"gap {1000 * (now - self._last_tick):.0f} ms at {since:+.2f} s "
                    f"after the first chunk ({len(self.chunk_times)} chunks)"
                )
        self._last_tick = now

    def start(self, timer: bool = True) -> None:
        """Begin recording; without ``timer`` only chunk arrivals are timed (speed rounds)."""
        self.chunk_times.clear()
        self.gaps.clear()
        self._last_tick = None
        if timer:
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


def _send(app: Any, controller: Any, text: str, max_tokens: int, timeout: float) -> dict[str, Any]:
    panel = controller.view.settings_panel
    panel.max_tokens.setValue(max_tokens)
    panel.temperature.setValue(0.0)
    panel.repeat_penalty.setValue(1.0)
    panel.seed.setValue(1)
    finished: list[dict[str, Any]] = []
    worker = controller.client.worker

    def done(_cid: int, payload: dict[str, Any]) -> None:
        finished.append(payload)

    worker.reply_finished.connect(done)
    controller.view.composer.setPlainText(text)
    controller.send()
    _wait(app, lambda: bool(finished) or not controller.generating, timeout)
    _wait(app, lambda: not controller.generating, timeout)
    worker.reply_finished.disconnect(done)
    return finished[0]["timings"] if finished else {}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench chat_view")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per decode round")
    parser.add_argument("--long", type=int, default=1000, help="tokens of the long reply")
    parser.add_argument("--history", type=int, default=200, help="messages before the long reply")
    args = parser.parse_args(argv)

    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-"))
    os.environ["SLMDESK_HOME"] = str(home)
    import psutil

    from slmdesk.app import build_window, make_application
    from slmdesk.chat.conversations import ConversationStore
    from slmdesk.common import settings
    from slmdesk.models.library import Library

    model = _gemma_path()
    entry = Library().import_model(model, copy=False, name="gemma-bench")
    settings.update(threads=2)
    app = make_application([])
    parts = build_window(autoload_model=False)
    parts.window.show()
    controller = parts.chat_controller
    assert controller is not None
    controller.load_model(entry.name)
    _wait(app, lambda: controller.loaded_name == entry.name, 120)
    probe = _Probe(controller)
    llm = controller.client.worker.engine._llm

    # 1. decode speed in the view vs raw llama.cpp, alternating rounds
    view_speeds: list[float] = []
    raw_speeds: list[float] = []
    for _ in range(args.rounds):
        controller.new_chat()
        probe.start(timer=False)
        timings = _send(app, controller, STORY, args.tokens, 600)
        probe.stop()
        tokens = int(timings.get("generated_tokens", 0))
        if len(probe.chunk_times) >= 2 and tokens > 1:
            span = probe.chunk_times[-1] - probe.chunk_times[0]
            view_speeds.append((tokens - 1) / span if span > 0 else 0.0)
        prompt_tokens = llm.tokenize(STORY.encode(), add_bos=True)
        raw_speeds.append(_raw_decode(llm, prompt_tokens, args.tokens))
    ratios = [v / r for v, r in zip(view_speeds, raw_speeds, strict=False) if r > 0]

    # 2. stalls while a long reply streams into a 200-message conversation
    store = ConversationStore()
    conversation = store.create(title="Long history", model=entry.name)
    for i in range(args.history):
        role = "user" if i % 2 == 0 else "assistant"
        store.add_message(conversation.id, role, f"{FILLER} ({i})")
    controller.open_conversation(conversation.id)
    _wait(app, lambda: len(controller.view.messages.widgets()) > 0, 60)
    settle_until = time.monotonic() + 1.0  # opening lays out and paints the page: not streaming
    _wait(app, lambda: time.monotonic() > settle_until, 5)
    # The base model may end a reply early: keep asking until `--long` tokens have streamed.
    streamed = 0
    gaps: list[float] = []
    replies = 0
    while streamed < args.long and replies < 80:
        probe.start()
        timings = _send(app, controller, STORY, args.long - streamed, 1800)
        probe.stop()
        gaps += probe.gaps
        streamed += int(timings.get("generated_tokens", 0))
        replies += 1
    long_timings = {"generated_tokens": streamed, "replies": replies}
    probe.gaps = gaps
    gaps_ms = [g * 1000 for g in probe.gaps]
    rss = psutil.Process().memory_info().rss
    memory_over_model = rss - model.stat().st_size

    parts.window.close()
    parts.shutdown()

    figures = {
        "decode_ratio_median": median(ratios) if ratios else None,
        "decode_ratios": ratios,
        "view_tokens_per_second": view_speeds,
        "raw_tokens_per_second": raw_speeds,
        "long_reply_tokens": long_timings.get("generated_tokens"),
        "long_reply_replies": long_timings.get("replies"),
        "messages_shown": len(controller.view.messages.widgets()),
        "history_messages": args.history,
        "gui_gap_p99_ms": _percentile(gaps_ms, 0.99),
        "gui_gap_max_ms": max(gaps_ms) if gaps_ms else None,
        "gui_ticks": len(gaps_ms),
        "rss_minus_model_mb": memory_over_model / 1e6,
    }
    print_figures(
        "Chat view (Gemma 3 270M, 2 threads)",
        [
            (
                "decode: view ÷ raw llama.cpp (median)",
                f"{figures['decode_ratio_median'] or 0:.3f}",
                "target >= 0.95",
            ),
            (
                "GUI gap p99 while streaming",
                f"{figures['gui_gap_p99_ms']:.1f} ms",
                f"target <= 20 ms ({figures['long_reply_tokens']} tokens, {args.history} msgs)",
            ),
            ("GUI gap max", f"{figures['gui_gap_max_ms'] or 0:.1f} ms", "target <= 50 ms"),
            (
                "RSS - model file while chatting",
                f"{figures['rss_minus_model_mb']:.0f} MB",
                "target <= 150 MB",
            ),
        ],
    )
    print(f"results: {save_results('chat_view', figures)}")
    return 0
