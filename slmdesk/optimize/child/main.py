"""Entry point of the optimizer child process: ``python -m slmdesk.optimize.child.main``.

The parent (`slmdesk.optimize.worker_process.WorkerSession`) writes JSON jobs on stdin, one line
each; this module runs them one after another with llama.cpp and answers each with JSON lines on
stdout (``progress``, then ``result`` or ``error``), and exits when stdin closes. llama.cpp's own
log goes to stderr, where the parent reads per-tensor progress.

Frozen app (PyInstaller): ``-m`` is not available, so the app's entry point must call
`frozen_dispatch` first thing; it runs the worker and exits when the executable was started as
``<app> --slmdesk-optimize-worker`` (what `worker_process.worker_command` uses when frozen).

Jobs (``kind``):
- ``quantize``: llama_model_quantize (``ftype``, ``allow_requantize``, ``only_copy``,
  ``prune_layers``) from ``source`` to ``dest``, then the pruned-metadata fix-up.
- ``dry_run``: per offered type, the tensor types llama.cpp would choose (for the size preview).
- ``evaluate``: `slmdesk.optimize.child.scoring.evaluate_in_process`.
- ``plan``: guided pruning search (`slmdesk.optimize.child.plan.plan_in_process`).
- ``imatrix``: the importance matrix of ``model`` on ``texts``, saved to ``dest``
  (`slmdesk.optimize.child.importance`); a ``quantize`` job takes it as ``imatrix`` (a path),
  with ``embedding_type`` / ``output_type`` (ggml type names) when chosen.
- ``speed``: decode speed of several models, back to back (`slmdesk.optimize.child.speed`).
- ``vocab_check``: a trimmed vocabulary against its original (`slmdesk.optimize.vocab.verify`).
- ``fit``: a whole make-it-fit search (`slmdesk.optimize.child.fit.run_fit`).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.lifeline import watch_parent
from slmdesk.llama import quantize as native
from slmdesk.optimize.child.convert import dry_run_types, prune_and_fix


def emit(event: str, **fields: Any) -> None:
    """Write one JSON line to the parent."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def progress(
    stage: str,
    done: int,
    total: int,
    detail: str = "",
    fraction: float | None = None,
    blocks: Sequence[int] | None = None,
    kld_mean: float | None = None,
) -> None:
    """Report progress to the parent (``fraction``: share of the work done, when known;
    ``blocks`` and ``kld_mean``: the set of blocks just measured, and what removing it costs)."""
    extra: dict[str, Any] = {} if fraction is None else {"fraction": fraction}
    if blocks is not None and kld_mean is not None:
        extra.update(blocks=list(blocks), kld_mean=kld_mean)
    emit("progress", stage=stage, done=done, total=total, detail=detail, **extra)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one job; returns its JSON-ready result."""
    kind = job.get("kind")
    n_threads = int(job.get("n_threads") or 2)
    if kind == "quantize":
        from slmdesk.models.gguf_info import read_gguf_info
        from slmdesk.optimize.child.quantize_progress import QuantizeProgress

        tracker = QuantizeProgress(
            read_gguf_info(job["source"]),
            job.get("prune_layers") or [],
            lambda done, total, name, fraction: progress("quantizing", done, total, name, fraction),
        )
        from slmdesk.optimize.child.importance import load_means

        importance = load_means(job.get("imatrix"))
        native.install_log(forward=True, listener=tracker.feed)
        fixed = prune_and_fix(
            job["source"],
            job["dest"],
            int(job["ftype"]),
            job.get("prune_layers") or [],
            bool(job.get("allow_requantize", True)),
            bool(job.get("only_copy", False)),
            n_threads,
            importance,
            job.get("embedding_type"),
            job.get("output_type"),
        )
        return {"path": job["dest"], "metadata_fixed": fixed}
    if kind == "dry_run":
        native.install_log(forward=False)
        prune = [int(i) for i in job.get("prune_layers") or []]
        types = dry_run_types(job["source"], dict(job["ftypes"]), n_threads, progress, prune)
        return {"types": types}
    if kind == "evaluate":
        native.install_log(forward=False)
        from slmdesk.optimize.child.scoring import evaluate_in_process

        progress("evaluating", 0, 1)
        report = evaluate_in_process(job["model"], job["reference"], job["text"], n_threads)
        progress("evaluating", 1, 1)
        return report.as_dict()
    if kind == "speed":
        native.install_log(forward=False)
        from slmdesk.optimize.child.speed import measure_speeds

        speeds = measure_speeds(list(job["models"]), str(job["text"]), n_threads, progress)
        return {"tokens_per_second": speeds}
    if kind == "imatrix":
        native.install_log(forward=False)
        from slmdesk.optimize.child.importance import measure_to_file

        return measure_to_file(job, progress)
    if kind == "plan":
        native.install_log(forward=False)
        from slmdesk.optimize.child.plan import plan_in_process

        return plan_in_process(job, progress)
    if kind == "vocab_check":
        native.install_log(forward=False)
        from slmdesk.optimize.vocab.verify import verify_trim

        texts = [str(t) for t in job["texts"]]
        step = lambda done, total: progress("checking vocabulary", done, total)  # noqa: E731
        return verify_trim(job["original"], job["trimmed"], texts, n_threads, step).as_dict()
    if kind == "fit":
        native.install_log(forward=False)
        from slmdesk.optimize.child.fit import run_fit

        return run_fit(job, progress)
    raise SlmdeskError(f"Unknown optimizer job {kind!r}.")


def answer(job: dict[str, Any]) -> None:
    """Run one job and write its ``result`` or ``error`` line."""
    try:
        result = run_job(job)
    except SlmdeskError as exc:
        emit("error", message=str(exc))
        return
    except MemoryError:
        emit("error", message="Not enough memory for this operation.")
        return
    except OSError as exc:
        emit("error", message=f"File error: {exc.strerror or exc} ({exc.filename or ''}).")
        return
    except Exception as exc:  # a bug: the parent shows the message, the log keeps the trace
        traceback.print_exc()
        emit("error", message=f"Unexpected optimizer failure: {type(exc).__name__}: {exc}")
        return
    emit("result", result=result)


def _partial_outputs(job: dict[str, Any]) -> list[str]:
    """What a job writes before it is complete (removed by the lifeline if the parent dies)."""
    dest = job.get("dest")
    if not isinstance(dest, str) or not dest:
        return []
    if job.get("kind") == "quantize":
        return [dest]
    if job.get("kind") == "imatrix":
        return [dest + ".partial"]
    return []


def main() -> int:
    """Read jobs from stdin (one JSON line each), run each, report on stdout."""
    # What the lifeline removes if the parent dies: the output of the job running now.
    partial: list[str] = []
    watch_parent(partial)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except ValueError:
            emit("error", message="The optimizer received a malformed job.")
            continue
        if not isinstance(job, dict):
            emit("error", message="The optimizer received a malformed job.")
            continue
        partial[:] = _partial_outputs(job)
        answer(job)
        partial.clear()
    return 0


def frozen_dispatch(argv: Sequence[str] | None = None) -> None:
    """In a frozen app: if started as the optimizer child, run it and exit."""
    from slmdesk.optimize.worker_process import FROZEN_FLAG

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [FROZEN_FLAG]:
        sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
