"""A whole make-it-fit run from the parent's side: one worker child searches, then the winner is
written into the library through optimize's finishing path (hidden name, report, rename).

Blocks the calling thread (run it off the GUI thread). ``progress`` gets the child's `Progress`
reports; ``on_outcome`` gets each candidate's `Outcome` as soon as it is measured or refused;
both run on the calling thread. ``cancel`` is polled: the child is killed and the work folder
removed, so nothing partial stays behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize.fit import vocabulary
from slmdesk.optimize.fit.front import Outcome, closest, mark_front, pick_winner, reason_sentence
from slmdesk.optimize.fit.search import DEFAULT_MAX_BUILDS, DEFAULT_PATIENCE
from slmdesk.optimize.fit.space import EMBEDDING_TYPES, FIT_TYPES, Candidate, candidate_space
from slmdesk.optimize.fit.target import FitTarget
from slmdesk.optimize.worker_process import (
    CancelCheck,
    Progress,
    ProgressCallback,
    run_worker,
    worker_session,
)

MEASURED_STAGE = "fit-measured"


class NoCandidateFits(SlmdeskError):
    """No built candidate met the target; ``result`` holds what was measured."""

    def __init__(self, message: str, result: FitResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class FitRequest:
    """What to search: the source, the target and the axes of the candidate space."""

    source: Path
    target: FitTarget
    name: str | None = None
    n_threads: int = 2
    types: Sequence[str] = FIT_TYPES
    embeddings: Sequence[str | None] = EMBEDDING_TYPES
    with_imatrix: bool = True
    # None: the whole vocabulary only. Trimming drops whole scripts, so a language set is tried
    # only when the user names it (e.g. [None, "english-code"]).
    vocabularies: Sequence[str | None] | None = None
    pruned: Sequence[tuple[int, ...]] = ((),)
    max_builds: int = DEFAULT_MAX_BUILDS
    patience: int = DEFAULT_PATIENCE
    calibration: Path | None = None
    # Build every candidate that fits instead of searching (the whole measured front).
    exhaustive: bool = False


@dataclass
class FitResult:
    """The measured front, the winner and why it won (the ``--json`` output)."""

    outcomes: list[Outcome]
    winner: Outcome | None
    reason: str
    target: FitTarget
    path: Path | None = None
    name: str | None = None
    elapsed_seconds: float = 0.0
    baseline: Outcome | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: front, winner, reason, path, name, elapsed_seconds (+ target,
        baseline, timings)."""
        return {
            "front": [o.as_dict() for o in self.outcomes],
            "winner": self.winner.as_dict() if self.winner else None,
            "reason": self.reason,
            "path": str(self.path) if self.path else None,
            "name": self.name,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "target": self.target.as_dict(),
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def make_it_fit(
    request: FitRequest,
    progress: ProgressCallback | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    cancel: CancelCheck | None = None,
) -> FitResult:
    """Search, build the winner into the library and return the front.

    Raises:
        NoCandidateFits: nothing built met the target (the message names the closest).
        SlmdeskError: bad source or name, `OptimizeCancelled`, `WorkerCrashed`.
    """
    with worker_session():  # the reference, the importance matrix and the search: one child
        return _make_it_fit(request, progress, on_outcome, cancel)


def _make_it_fit(
    request: FitRequest,
    progress: ProgressCallback | None,
    on_outcome: Callable[[Outcome], None] | None,
    cancel: CancelCheck | None,
) -> FitResult:
    from slmdesk.optimize.calibration import calibration_chunks
    from slmdesk.optimize.evaluate import default_text
    from slmdesk.optimize.importance import ensure_importance
    from slmdesk.optimize.leftovers import remove_stale
    from slmdesk.optimize.pipeline import make_reference, source_info

    started = time.perf_counter()
    info = source_info(request.source)
    dest = _destination(request.name) if request.name else None
    models = paths.models_dir()
    for folder in (models, paths.cache_dir(), paths.cache_dir() / "references"):
        remove_stale(folder)
    reference = make_reference(info.path, request.n_threads, progress, cancel)
    axis = (
        vocabulary.vocabulary_axis([])
        if request.vocabularies is None
        else list(request.vocabularies)
    )
    candidates = candidate_space(
        info,
        request.types,
        axis,
        request.pruned,
        request.with_imatrix,
        request.embeddings,
    )
    importance = None
    if any(c.imatrix for c in candidates):  # measured once per model and calibration, cached
        importance = ensure_importance(
            reference,
            calibration_chunks(request.calibration),
            request.n_threads,
            _renamed(progress, "fit-importance"),
            cancel,
        )
    workdir = paths.cache_dir() / f"fit-{os.getpid()}-{int(time.time() * 1000)}"
    workdir.mkdir(parents=True, exist_ok=True)

    def relay(p: Progress) -> None:
        if p.stage == MEASURED_STAGE:
            if on_outcome is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    on_outcome(Outcome.from_dict(json.loads(p.detail)))
        elif progress is not None:
            progress(p)

    try:
        found = run_worker(
            {
                "kind": "fit",
                "reference": str(reference),
                "baseline": str(info.path),
                "workdir": str(workdir),
                "heldout": default_text(),
                "imatrix": str(importance.path) if importance else None,
                "imatrix_seconds": importance.seconds if importance else None,
                "target": request.target.as_dict(),
                "candidates": [c.as_dict() for c in candidates],
                "max_builds": request.max_builds,
                "patience": request.patience,
                "exhaustive": request.exhaustive,
                "n_threads": request.n_threads,
            },
            relay,
            cancel,
            stage="fit",
        )
        outcomes = [Outcome.from_dict(o) for o in found["outcomes"]]
        mark_front(outcomes)
        winner = pick_winner(outcomes, request.target)
        base = found.get("baseline")
        baseline = None
        if base:
            baseline = Outcome(
                Candidate(info.quantization),
                size_bytes=int(base["size_bytes"]),
                kld_mean=base.get("kld_mean"),
                top1_agreement=base.get("top1_agreement"),
                built=True,
            )
        timings = {
            k: float(v) for k, v in found.items() if k.endswith("_seconds") and v is not None
        }
        result = FitResult(outcomes, winner, "", request.target, baseline=baseline, timings=timings)
        if winner is None:
            result.elapsed_seconds = time.perf_counter() - started
            raise NoCandidateFits(_no_fit_message(outcomes, request.target), result)
        result.reason = reason_sentence(winner, outcomes, request.target, baseline)
        path = Path(found["winner_path"])
        result.path, result.name = _finish(info, path, winner, result, dest, request)
        result.elapsed_seconds = time.perf_counter() - started
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _renamed(progress: ProgressCallback | None, stage: str) -> ProgressCallback | None:
    """``progress`` with every report's stage named ``stage``."""
    if progress is None:
        return None
    forward = progress
    return lambda p: forward(dataclasses.replace(p, stage=stage))


def _no_fit_message(outcomes: Sequence[Outcome], target: FitTarget) -> str:
    near = closest(outcomes, target)
    built = sum(o.built for o in outcomes)
    if near is None:
        predicted = [o for o in outcomes if o.predicted_size_bytes]
        if predicted:
            small = min(predicted, key=lambda o: o.predicted_size_bytes or 0)
            return (
                f"No candidate can meet the target ({target.describe()}): the smallest, "
                f"{small.candidate.label()}, is predicted at "
                f"{(small.predicted_size_bytes or 0) / 1e6:,.1f} MB."
            )
        return f"No candidate can meet the target ({target.describe()}): none could be built."
    return (
        f"No candidate meets the target ({target.describe()}) after {built} builds; the closest "
        f"was {near.candidate.label()} at {(near.size_bytes or 0) / 1e6:,.1f} MB with KLD "
        f"{near.kld_mean:.4f}."
    )


def _destination(name: str) -> Path:
    if name.lower().endswith(".gguf"):
        name = name[:-5]
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise SlmdeskError(f"{name!r} is not a usable model name.")
    dest = paths.models_dir() / f"{name}.gguf"
    if dest.exists():
        raise SlmdeskError(f"A model file named {dest.name} already exists; choose another --name.")
    return dest


def _free_destination(name: str) -> Path:
    """``name``, or ``name-2``, ``name-3``… when a model file already takes it."""
    folder = paths.models_dir()
    dest, n = folder / f"{name}.gguf", 1
    while dest.exists():
        n += 1
        dest = folder / f"{name}-{n}.gguf"
    return dest


def _finish(
    info: Any,
    built: Path,
    winner: Outcome,
    result: FitResult,
    dest: Path | None,
    request: FitRequest,
) -> tuple[Path, str]:
    """Move the winner beside the library under a hidden name, then rename it in and register
    it with its report (the same order optimize uses)."""
    from slmdesk.models.library import Library
    from slmdesk.optimize.calibration import calibration_text
    from slmdesk.optimize.evaluate import text_sha256
    from slmdesk.optimize.leftovers import staging_path
    from slmdesk.optimize.pipeline import default_name

    c = winner.candidate
    if dest is None:  # the winner is known only now: never fail a finished search on a name
        dest = _free_destination(default_name(info, f"{c.type}-fit", c.pruned_blocks, c.vocabulary))
    staged = staging_path(dest, "optimizing")
    shutil.move(str(built), staged)
    report = {
        "source": str(info.path),
        "source_quantization": info.quantization,
        "type": c.type,
        "removed_blocks": list(c.pruned_blocks),
        "size_before": info.size_bytes,
        "size_after": staged.stat().st_size,
        "eval": {
            "kld_mean": winner.kld_mean,
            "kld_p99": winner.kld_p99,
            "top1_agreement": winner.top1_agreement,
        },
        "fit": {k: v for k, v in result.as_dict().items() if k not in ("path", "name")},
    }
    provenance = {
        "source": str(info.path),
        "removed_blocks": list(c.pruned_blocks),
        "type": c.type,
        "calibration_sha256": text_sha256(calibration_text(request.calibration))
        if c.imatrix
        else None,
        "report": report,
    }
    if dest.exists():
        with contextlib.suppress(OSError):
            staged.unlink()
        raise SlmdeskError(f"A model file named {dest.name} appeared meanwhile; choose --name.")
    os.replace(staged, dest)
    entry = Library().add_managed_file(dest, provenance=provenance, name=dest.stem)
    return dest, entry.name
