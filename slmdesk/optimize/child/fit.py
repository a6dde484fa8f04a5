"""A whole make-it-fit run inside one optimizer child: the held-out reference is measured once,
then candidates are predicted, built and scored as the search asks. The importance matrix comes
from the parent's cache (`slmdesk.optimize.importance`, measured by the same child beforehand
when missing), shared with optimize runs of the same model and calibration.

Progress lines (stage names): ``fit-reference``, ``fit-vocabulary``,
``fit-preview``, ``fit-building`` (one per candidate, with the conversion's fraction) and
``fit-measured``, whose ``detail`` is the JSON of the candidate's `Outcome` so the parent can
draw the front as it grows. Only the current winner's file is kept in the work folder.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama import quantize as native
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.quant_types import QUANT_TYPES
from slmdesk.optimize.child.convert import dry_run_types
from slmdesk.optimize.child.scoring import Reference, build_reference, score_model
from slmdesk.optimize.fit import vocabulary
from slmdesk.optimize.fit.front import Outcome, pick_winner
from slmdesk.optimize.fit.search import FitSearch
from slmdesk.optimize.fit.space import Candidate, distinct_types, predict_size
from slmdesk.optimize.fit.target import FitTarget

Report = Callable[..., None]


def run_fit(job: dict[str, Any], progress: Report) -> dict[str, Any]:
    """Run the search described by ``job`` and return the outcomes and the winner's file."""
    started = time.perf_counter()
    n_threads = int(job.get("n_threads") or 2)
    reference = Path(job["reference"])
    workdir = Path(job["workdir"])
    heldout = str(job["heldout"])
    target = FitTarget(**job["target"])
    candidates = [Candidate.from_dict(c) for c in job["candidates"]]
    timings: dict[str, float] = {}

    progress("fit-reference", 0, 1, "scoring the held-out text with the reference")
    mark = time.perf_counter()
    references: dict[str | None, Reference] = {None: build_reference(reference, heldout, n_threads)}
    sources: dict[str | None, Path] = {None: reference}
    timings["reference_seconds"] = time.perf_counter() - mark
    progress("fit-reference", 1, 1, "reference ready")

    failed: dict[Candidate, str] = {}
    sets = [v for v in dict.fromkeys(c.vocabulary for c in candidates) if v]
    for i, name in enumerate(sets):
        progress("fit-vocabulary", i, len(sets), name)
        try:
            trimmed = vocabulary.trim(reference, workdir / f"vocab-{len(sources)}.gguf", name)
            kept = vocabulary.kept_ids(reference, trimmed)
            references[name] = _kept_reference(reference, trimmed, kept, heldout, n_threads)
            sources[name] = trimmed
        except (SlmdeskError, ValueError, RuntimeError, OSError) as exc:
            for c in candidates:
                if c.vocabulary == name:
                    failed[c] = f"the {name} vocabulary could not be made: {exc}"
    progress("fit-vocabulary", len(sets), len(sets), "")

    predicted: list[tuple[Candidate, int]] = []
    types = distinct_types(candidates)
    for vocab, source in sources.items():
        info = read_gguf_info(source)
        found = dry_run_types(
            str(source),
            {t: QUANT_TYPES[t].ftype for t in types},
            n_threads,
            lambda stage, done, total, detail: progress("fit-preview", done, total, detail),
        )
        for c in candidates:
            if c.vocabulary != vocab or c in failed:
                continue
            entry = found.get(c.type, {})
            if entry.get("error"):
                failed[c] = str(entry["error"])
                continue
            predicted.append((c, predict_size(info, entry.get("tensor_types", {}), c)))

    search = FitSearch(
        target,
        predicted,
        int(job.get("max_builds") or 8),
        int(job.get("patience") or 2),
        bool(job.get("exhaustive")),
    )
    refused = [Outcome(c, reason=f"failed: {why}") for c, why in failed.items()]

    importance = None
    if job.get("imatrix") and any(c.imatrix for c, _ in predicted):
        from slmdesk.optimize.child.importance import load_means

        importance = load_means(str(job["imatrix"]))
        timings["imatrix_seconds"] = float(job.get("imatrix_seconds") or 0.0)
    best_path: Path | None = None
    while (outcome := search.next_candidate()) is not None:
        c = outcome.candidate
        progress("fit-building", search.builds, search.max_builds, c.label(), 0.0)
        out = workdir / f"{c.key()}.gguf"
        mark = time.perf_counter()
        label = c.label()

        def converted(fraction: float, label: str = label) -> None:
            progress("fit-building", search.builds, search.max_builds, label, fraction)

        try:
            _build(
                sources[c.vocabulary],
                out,
                c,
                importance,
                n_threads,
                converted,
            )
            summary, _ = score_model(out, references[c.vocabulary], n_threads)
        except SlmdeskError as exc:
            with contextlib.suppress(OSError):
                out.unlink()
            done = search.record_failed(str(exc).rstrip("."), time.perf_counter() - mark)
            progress("fit-measured", search.builds, search.max_builds, json.dumps(done.as_dict()))
            continue
        done = search.record_measured(
            out.stat().st_size,
            float(summary["kld_mean"]),
            float(summary["kld_p99"]),
            float(summary["top1_agreement"]),
            time.perf_counter() - mark,
        )
        done.extra["path"] = str(out)
        progress("fit-measured", search.builds, search.max_builds, json.dumps(done.as_dict()))
        winner = pick_winner(search.outcomes, target)
        keep = Path(winner.extra["path"]) if winner is not None else None
        for path in {best_path, out} - {keep, None}:
            with contextlib.suppress(OSError):
                path.unlink()  # type: ignore[union-attr]
        best_path = keep
    outcomes = search.finish() + refused
    baseline = _baseline(job, references[None], n_threads, progress)
    winner = pick_winner(outcomes, target)
    timings["search_seconds"] = time.perf_counter() - started
    return {
        "outcomes": [o.as_dict() for o in outcomes],
        "winner_key": winner.candidate.key() if winner else None,
        "winner_path": winner.extra.get("path") if winner else None,
        "builds": search.builds,
        "baseline": baseline,
        **timings,
    }


def _baseline(
    job: dict[str, Any], reference: Reference, n_threads: int, progress: Report
) -> dict[str, Any] | None:
    """The source itself scored on the same reference: what the winner is compared with."""
    source = job.get("baseline")
    if not source:
        return None
    if Path(source) == Path(job["reference"]):
        return {"size_bytes": Path(source).stat().st_size, "kld_mean": 0.0, "top1_agreement": 1.0}
    progress("fit-baseline", 0, 1, "scoring the source")
    summary, _ = score_model(source, reference, n_threads)
    progress("fit-baseline", 1, 1, "")
    return {
        "size_bytes": Path(source).stat().st_size,
        "kld_mean": float(summary["kld_mean"]),
        "top1_agreement": float(summary["top1_agreement"]),
    }


def _kept_reference(
    reference: Path, trimmed: Path, kept: list[int], text: str, n_threads: int
) -> Reference:
    from slmdesk.optimize.child.scoring import build_kept_reference

    return build_kept_reference(reference, trimmed, kept, text, n_threads)


def _build(
    source: Path,
    dest: Path,
    c: Candidate,
    importance: dict[str, Any] | None,
    n_threads: int,
    fraction: Callable[[float], None],
) -> None:
    """Quantize (and prune) one candidate, reporting the conversion's progress."""
    import gguf

    from slmdesk.llama.quantize import quantize_file
    from slmdesk.optimize.child.quantize_progress import QuantizeProgress
    from slmdesk.optimize.prune import fix_pruned_file

    info = read_gguf_info(source)
    tracker = QuantizeProgress(info, c.pruned_blocks, lambda d, t, n, f: fraction(f))
    native.install_log(forward=False, listener=tracker.feed)
    embedding = int(gguf.GGMLQuantizationType[c.embedding_type]) if c.embedding_type else None
    try:
        quantize_file(
            str(source),
            str(dest),
            QUANT_TYPES[c.type].ftype,
            prune_layers=list(c.pruned_blocks),
            n_threads=n_threads,
            importance=importance if c.imatrix else None,
            embedding_type=embedding,
            output_type=embedding,
        )
    finally:
        native.install_log(forward=False)
    if c.pruned_blocks:
        fix_pruned_file(info, list(c.pruned_blocks), dest)
