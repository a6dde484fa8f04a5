"""Entry point of the optimizer child process: ``python -m slmdesk.core.optimize_worker``.

The parent (`slmdesk.core.worker_process.run_worker`) writes one JSON job on stdin; this module
runs it with llama.cpp and answers with JSON lines on stdout (``progress``, then ``result`` or
``error``). llama.cpp's own log goes to stderr, where the parent reads per-tensor progress.

Frozen app (PyInstaller): ``-m`` is not available, so the app's entry point must call
`frozen_dispatch` first thing; it runs the worker and exits when the executable was started as
``<app> --slmdesk-optimize-worker`` (what `worker_process.worker_command` uses when frozen).

Jobs (``kind``):
- ``quantize``: llama_model_quantize (``ftype``, ``allow_requantize``, ``only_copy``,
  ``prune_layers``) from ``source`` to ``dest``, then the pruned-metadata fix-up.
- ``dry_run``: per offered type, the tensor types llama.cpp would choose (for the size preview).
- ``evaluate``: `slmdesk.core.evaluate.evaluate_in_process`.
- ``plan``: guided pruning search (`slmdesk.core.optimize.plan_in_process`).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmdesk.core.errors import SlmdeskError

_captured: list[str] | None = None
_callback: Any = None


def emit(event: str, **fields: Any) -> None:
    """Write one JSON line to the parent."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def progress(stage: str, done: int, total: int, detail: str = "") -> None:
    """Report progress to the parent."""
    emit("progress", stage=stage, done=done, total=total, detail=detail)


def _install_log(forward: bool) -> None:
    """Route llama.cpp's log to stderr (for the parent) and to an optional capture buffer."""
    global _callback
    import llama_cpp

    def on_log(level: int, text: bytes, user_data: Any) -> None:
        chunk = text.decode("utf-8", errors="replace") if text else ""
        if _captured is not None:
            _captured.append(chunk)
        if forward:
            os.write(2, chunk.encode("utf-8"))

    _callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def quantize_file(
    source: str,
    dest: str,
    ftype: int,
    allow_requantize: bool = True,
    only_copy: bool = False,
    prune_layers: Sequence[int] = (),
    n_threads: int = 2,
    dry_run: bool = False,
) -> None:
    """Call llama_model_quantize once (in this process)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = allow_requantize
    params.only_copy = only_copy
    params.nthread = n_threads
    params.dry_run = dry_run
    keep_alive = None
    if prune_layers:
        # llama-quant.cpp reads until -1 and uses prune.front() as the lowest index: sort it.
        values = [*sorted(int(i) for i in prune_layers), -1]
        keep_alive = (ctypes.c_int32 * len(values))(*values)
        params.prune_layers = keep_alive
    rc = llama_cpp.llama_model_quantize(
        source.encode("utf-8"), dest.encode("utf-8"), ctypes.byref(params)
    )
    del keep_alive
    if rc != 0:
        raise SlmdeskError(f"llama.cpp could not convert {Path(source).name} (code {rc}).")


def prune_and_fix(
    source: str,
    dest: str,
    ftype: int,
    prune_layers: Sequence[int],
    allow_requantize: bool = True,
    only_copy: bool = False,
    n_threads: int = 2,
) -> list[str]:
    """Quantize/prune ``source`` into ``dest`` and repair the pruned metadata."""
    from slmdesk.core.gguf_info import read_gguf_info
    from slmdesk.core.prune import fix_pruned_file

    quantize_file(source, dest, ftype, allow_requantize, only_copy, prune_layers, n_threads)
    if not prune_layers:
        return []
    return fix_pruned_file(read_gguf_info(source), prune_layers, Path(dest))


_DRY_LINE = re.compile(
    r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+-\s+\[[^\]]*\],\s+type\s*=\s*(\S+),\s+size\s*=\s*[\d.]+\s*MiB"
    r"(?:\s*->\s*[\d.]+\s*MiB\s*\((\S+)\))?"
)


def dry_run_types(source: str, ftypes: dict[str, int], n_threads: int) -> dict[str, Any]:
    """For each type name, llama.cpp's chosen type per tensor (from a dry run's log)."""
    global _captured
    out: dict[str, Any] = {}
    for i, (name, code) in enumerate(ftypes.items()):
        _captured = []
        error = None
        try:
            quantize_file(source, os.devnull, code, True, False, (), n_threads, dry_run=True)
        except SlmdeskError as exc:
            error = str(exc)
        text = "".join(_captured)
        _captured = None
        tensor_types: dict[str, str] = {}
        for line in text.splitlines():
            match = _DRY_LINE.match(line.strip())
            if match:
                tensor_types[match[1]] = (match[3] or match[2]).upper()
        out[name] = {
            "tensor_types": tensor_types,
            "needs_imatrix": "requires an importance matrix" in text
            or "requires an imatrix" in text,
            "error": error,
        }
        progress("preview", i + 1, len(ftypes), name)
    return out


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one job; returns its JSON-ready result."""
    kind = job.get("kind")
    n_threads = int(job.get("n_threads") or 2)
    if kind == "quantize":
        _install_log(forward=True)
        fixed = prune_and_fix(
            job["source"],
            job["dest"],
            int(job["ftype"]),
            job.get("prune_layers") or [],
            bool(job.get("allow_requantize", True)),
            bool(job.get("only_copy", False)),
            n_threads,
        )
        return {"path": job["dest"], "metadata_fixed": fixed}
    if kind == "dry_run":
        _install_log(forward=False)
        return {"types": dry_run_types(job["source"], dict(job["ftypes"]), n_threads)}
    if kind == "evaluate":
        _install_log(forward=False)
        from slmdesk.core.evaluate import evaluate_in_process

        progress("evaluating", 0, 1)
        report = evaluate_in_process(job["model"], job["reference"], job["text"], n_threads)
        progress("evaluating", 1, 1)
        return report.as_dict()
    if kind == "plan":
        _install_log(forward=False)
        from slmdesk.core.optimize import plan_in_process

        return plan_in_process(job, progress)
    if kind == "crash":  # used by tests: a native-style death without a result
        os.kill(os.getpid(), 9)
    raise SlmdeskError(f"Unknown optimizer job {kind!r}.")


def main() -> int:
    """Read the job from stdin, run it, report on stdout."""
    try:
        job = json.loads(sys.stdin.read() or "{}")
        result = run_job(job)
    except SlmdeskError as exc:
        emit("error", message=str(exc))
        return 1
    except MemoryError:
        emit("error", message="Not enough memory for this operation.")
        return 1
    except OSError as exc:
        emit("error", message=f"File error: {exc.strerror or exc} ({exc.filename or ''}).")
        return 1
    except Exception as exc:  # a bug: the parent shows the message, the log keeps the trace
        traceback.print_exc()
        emit("error", message=f"Unexpected optimizer failure: {type(exc).__name__}: {exc}")
        return 1
    emit("result", result=result)
    return 0


def frozen_dispatch(argv: Sequence[str] | None = None) -> None:
    """In a frozen app: if started as the optimizer child, run it and exit."""
    from slmdesk.core.worker_process import FROZEN_FLAG

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [FROZEN_FLAG]:
        sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
