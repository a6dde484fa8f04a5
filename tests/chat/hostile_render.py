"""Run hostile chat templates in a child process and print what each one cost, one JSON line each.

usage: python hostile_render.py TEMPLATE.jinja...

For each template: build a `ChatFormat` from it and render a 200-message conversation, as
loading a model and sending a message in a long chat does. Printed per template: ``seconds``
(wall clock for both), ``cpu_seconds`` (processor time: the same on an idle machine, and what
the template costs when the machine is shared), ``peak_bytes`` (tracemalloc's peak of Python allocations),
``rss_growth_bytes`` (growth of the process's peak resident memory since the start, Linux),
``source`` and ``description`` of the resulting format.

It runs in a child so that a template that escapes its limits (a regression) is stopped by the
address-space limit set here and the parent's timeout, instead of taking the test machine down.
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

ADDRESS_SPACE_LIMIT = 2 << 30
CONVERSATION = [{"role": "system", "content": "Be brief."}] + [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}: " + "word " * 100}
    for i in range(200)
]


def _limit_address_space() -> None:
    try:
        import resource
    except ImportError:  # not on this platform: the parent's timeout still applies
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    except (ValueError, OSError):  # e.g. macOS refuses to lower it: the timeout still applies
        pass


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux


def main(paths: list[str]) -> None:
    _limit_address_space()
    from slmdesk.models.chat_format import ChatFormat

    # Warm up (imports, first compile) so the figures are the template's own.
    ChatFormat("{{ messages[0]['content'] }}").render(CONVERSATION)
    baseline_rss = _peak_rss()
    tracemalloc.start()
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        tracemalloc.reset_peak()
        started = time.perf_counter()
        cpu_started = time.process_time()
        fmt = ChatFormat(text, architecture="qwen2", eos_token="<|endoftext|>")
        fmt.render(CONVERSATION)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        report = {
            "name": Path(path).stem,
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "peak_bytes": tracemalloc.get_traced_memory()[1],
            "rss_growth_bytes": max(0, _peak_rss() - baseline_rss),
            "source": fmt.source,
            "description": fmt.description,
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
