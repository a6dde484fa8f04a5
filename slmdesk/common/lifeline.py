"""Ties a child process (the optimizer worker, the model load check) to its parent's life.

When the app is killed (``kill -9``, a crash, a power-off of the window), nothing tells its
children: without this, a quantization or evaluation would run on for minutes, holding memory and
leaving its partial output behind. A watchdog thread notices within `POLL_SECONDS` that the parent
is gone (llama.cpp's long native calls release the GIL, so it runs during them), removes the job's
partial output and exits.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

POLL_SECONDS = 0.5
EXIT_PARENT_GONE = 3


def _parent_alive(parent_pid: int) -> bool:
    if os.getppid() != parent_pid:  # re-parented: the parent has died (POSIX)
        return False
    try:
        import psutil

        return bool(psutil.pid_exists(parent_pid))
    except Exception:
        return True


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def watch_parent(partial_outputs: Iterable[str | os.PathLike[str]] = ()) -> threading.Thread:
    """Exit this process (after removing ``partial_outputs``) as soon as its parent dies.

    A list is read when the parent dies, not now: a process that runs several jobs keeps the
    current job's output in it. Returns the daemon watchdog thread (already started).
    """
    parent_pid = os.getppid()
    outputs = partial_outputs if isinstance(partial_outputs, list) else list(partial_outputs)

    def watch() -> None:
        while _parent_alive(parent_pid):
            time.sleep(POLL_SECONDS)
        _remove(Path(p) for p in list(outputs))
        os._exit(EXIT_PARENT_GONE)

    thread = threading.Thread(target=watch, name="slmdesk-lifeline", daemon=True)
    thread.start()
    return thread
