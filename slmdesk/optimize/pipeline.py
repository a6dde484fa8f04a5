"""Make a model smaller: measured block pruning plus llama.cpp quantization, with a report.

Public API (no Qt; every function below blocks its calling thread — run it off the GUI thread):

- `size_preview(source)` -> list of `TypeOption`: predicted size, memory verdict and llama.cpp's
  published quality figure for every offered type.
- `quantize(source, dest, quant, prune_layers=...)` -> Path: one llama_model_quantize run in a
  child process, written to a hidden temporary file and renamed when complete.
- `make_reference(source)` -> Path: the F16 reference (cached) that quality is measured against.
- `plan_pruning(source, n)` -> `PruningPlan`: blocks to remove chosen by KL divergence on the
  calibration text, plus per-block importance for the UI (``n=0`` gives importance only).
- `optimize(request)` -> `OptimizeResult`: the whole pipeline (reference, plan, quantize,
  evaluate, comparison with plain quantization, library registration with provenance).

Callbacks: ``progress(Progress)`` is called on the calling thread (never from another thread);
``cancel()`` is polled about ten times a second and, when it returns True, the child process is
killed, partial files are removed and `OptimizeCancelled` is raised. Heavy work (quantize, plan,
evaluate) runs in a child process (`slmdesk.optimize.worker_process`; one child for a whole
`optimize` run), so a native crash becomes a `WorkerCrashed` error and the caller lives on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info, read_tensor_count
from slmdesk.models.hardware import estimate_memory
from slmdesk.models.quant_types import (
    QUANT_TYPES,
    QuantType,
    canonical_name,
    imatrix_by_default,
    offered_types,
    quant_type,
    tensor_type,
)
from slmdesk.optimize.guardrails import size_change_percent, size_warning
from slmdesk.optimize.leftovers import remove_stale, staging_path
from slmdesk.optimize.worker_process import (
    CancelCheck,
    OptimizeCancelled,
    Progress,
    ProgressCallback,
    WorkerCrashed,
    run_worker,
    worker_session,
)

__all__ = [
    "OptimizeCancelled",
    "OptimizeRequest",
    "OptimizeResult",
    "Progress",
    "PruningPlan",
    "TypeOption",
    "WorkerCrashed",
    "make_reference",
    "optimize",
    "plan_pruning",
    "quantize",
    "size_preview",
]

_UNQUANTIZED = {"F32", "F16", "BF16"}
# Extra free space demanded beyond the predicted output (metadata rewrite, file system slack).
DISK_MARGIN_BYTES = 64 * 1024 * 1024


@dataclass
class TypeOption:
    """One quantization type as the wizard shows it."""

    name: str
    predicted_size_bytes: int
    memory_total_bytes: int
    verdict: str
    ppl_increase: float | None
    bits_per_weight: float | None
    description: str
    available: bool = True
    reason: str = ""
    # Set when this type would make the file larger than the source, or not meaningfully smaller.
    size_warning: str = ""
    # The run measures an importance matrix for this type (on by default where it helps).
    uses_imatrix: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class PruningPlan:
    """Which blocks to remove and what each costs (KL divergence on the calibration text)."""

    removed: list[int]
    kld_mean: float | None
    importance: list[float]  # per block: mean KLD when only that block is removed
    candidates: list[dict[str, Any]]  # every evaluated set: {"blocks": [...], "kld_mean": x}
    calibration_sha256: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class OptimizeRequest:
    """What to make: a type, and optionally blocks to remove (given or chosen by count)."""

    source: Path
    quant: str
    prune_layers: list[int] | None = None
    prune_count: int | None = None
    calibration: Path | None = None
    name: str | None = None
    n_threads: int = 2
    evaluate: bool = True
    compare: bool = True  # when pruning: also judge plain quantization of about the same size
    # Per-block importance already measured on the same calibration text (plan_pruning with
    # n=0): the guided search then starts from it instead of scoring every block again.
    importance: list[float] | None = None
    # A language set (slmdesk.optimize.vocab.LANGUAGE_SETS): keep only the tokens it needs.
    vocabulary: str | None = None
    # Measure an importance matrix on the calibration text and quantize with it; None: where it
    # helps (`imatrix_by_default`: K-quants below 5 bits, the IQ types).
    imatrix: bool | None = None
    # ggml type names for the token embedding and the output tensor; None: llama.cpp's choice.
    embedding_type: str | None = None
    output_type: str | None = None


@dataclass
class OptimizeResult:
    """The new model and its report."""

    path: Path
    name: str
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``path`` plus the report; ``vocabulary`` when it was trimmed)."""
        data = {"path": str(self.path), "name": self.name, "report": self.report}
        if "vocabulary" in self.report:
            data["vocabulary"] = self.report["vocabulary"]
        return data


# -- checks and previews ---------------------------------------------------------------------


def source_info(source: str | os.PathLike[str]) -> GGUFInfo:
    """Read and validate the source model (clear errors for non-GGUF files)."""
    return read_gguf_info(source)


def requantize_warning(info: GGUFInfo) -> str | None:
    """A warning when the source is already quantized (quality is bounded by it)."""
    quant = info.quantization
    if quant.upper() in _UNQUANTIZED:
        return None
    return (
        f"The source is already quantized ({quant}): the result cannot be better than the "
        "source, and each conversion loses a little more."
    )


def predicted_size(
    info: GGUFInfo,
    tensor_types: dict[str, str],
    removed: Sequence[int] = (),
    embedding_type: str | None = None,
    output_type: str | None = None,
) -> int:
    """File size after converting tensors to ``tensor_types`` (name -> type) and pruning
    (`slmdesk.optimize.sizes.predicted_bytes`)."""
    from slmdesk.optimize.sizes import predicted_bytes

    return predicted_bytes(info, tensor_types, embedding_type, output_type, removed)


def uses_imatrix(q: QuantType, imatrix: bool | None) -> bool:
    """Whether a run with the ``imatrix`` choice (None: the default) measures one for ``q``."""
    return imatrix_by_default(q) if imatrix is None else imatrix


def check_tensor_types(
    info: GGUFInfo, embedding_type: str | None, output_type: str | None
) -> tuple[str | None, str | None]:
    """The embedding and output type names, checked against the model's rows before any work.

    Raises:
        SlmdeskError: an unknown type, or one whose blocks do not divide the tensor's rows.
    """
    from slmdesk.models.row_types import row_type_problem

    embedding = None if embedding_type is None else tensor_type(embedding_type)
    output = None if output_type is None else tensor_type(output_type)
    problem = row_type_problem({t.name: t.shape for t in info.tensors}, embedding, output)
    if problem:
        raise SlmdeskError(problem)
    return embedding, output


def tensor_type_tables(
    source: str | os.PathLike[str],
    types: Sequence[str],
    n_threads: int = 2,
    cancel: CancelCheck | None = None,
    removed: Sequence[int] = (),
) -> dict[str, dict[str, Any]]:
    """For each type name, llama.cpp's choice of type per tensor (one dry run per type, in the
    worker child): ``{"tensor_types": {name: type}, "needs_imatrix": bool, "error": str|None}``;
    with ``removed``, for the pruned model (its blocks numbered again from 0).

    With `slmdesk.optimize.sizes.predicted_bytes` this prices any plan without converting.
    """
    info = source_info(source)
    result = run_worker(
        {
            "kind": "dry_run",
            "source": str(info.path),
            "ftypes": {QUANT_TYPES[t].name: QUANT_TYPES[t].ftype for t in types},
            "n_threads": n_threads,
            "prune_layers": sorted({int(i) for i in removed}),
        },
        cancel=cancel,
        stage="preview",
    )
    return dict(result["types"])


def size_preview(
    source: str | os.PathLike[str],
    types: Sequence[str] | None = None,
    removed: Sequence[int] = (),
    n_threads: int = 2,
    cancel: CancelCheck | None = None,
    embedding_type: str | None = None,
    output_type: str | None = None,
    imatrix: bool | None = None,
) -> list[TypeOption]:
    """Predicted size, memory verdict and published quality for every type.

    Sizes come from llama.cpp's own choice of tensor types (a ``dry_run`` per type in a child,
    well under a second each for small models) applied to the tensor table, so fallbacks such as
    Q5_0 for rows that are not a multiple of 256 are counted right; a chosen embedding or output
    type replaces llama.cpp's for those tensors. ``types`` defaults to every type a run can make
    (those needing an importance matrix unless ``imatrix`` is False); ``imatrix`` (None: where it
    helps) sets each option's ``uses_imatrix``.

    Raises:
        SlmdeskError: an embedding or output type the model's rows cannot take (before any work).
    """
    info = source_info(source)
    embedding_type, output_type = check_tensor_types(info, embedding_type, output_type)
    wanted = [
        QUANT_TYPES[t] for t in (offered_types(imatrix is not False) if types is None else types)
    ]
    tables = tensor_type_tables(info.path, [q.name for q in wanted], n_threads, cancel, removed)
    options: list[TypeOption] = []
    base_memory = estimate_memory(info)
    for q in wanted:
        found = tables.get(q.name, {})
        size = predicted_size(
            info, found.get("tensor_types", {}), removed, embedding_type, output_type
        )
        memory_total = base_memory.total_bytes - base_memory.weights_bytes + size
        from slmdesk.models.hardware import verdict_for

        with_imatrix = uses_imatrix(q, imatrix)
        needs = q.needs_imatrix or bool(found.get("needs_imatrix"))
        available = not ((needs and not with_imatrix) or found.get("error"))
        reason = ""
        if not available:
            reason = found.get("error") or f"{q.name} needs an importance matrix."
        options.append(
            TypeOption(
                name=q.name,
                predicted_size_bytes=size,
                memory_total_bytes=memory_total,
                verdict=verdict_for(memory_total),
                ppl_increase=q.ppl_increase,
                bits_per_weight=q.bits_per_weight,
                description=q.description,
                available=available,
                reason=reason,
                size_warning=size_warning(info.quantization, info.size_bytes, q.name, size) or "",
                uses_imatrix=with_imatrix,
            )
        )
    return options


def size_check(
    info: GGUFInfo,
    quant: str,
    removed: Sequence[int] = (),
    n_threads: int = 2,
    cancel: CancelCheck | None = None,
    embedding_type: str | None = None,
    output_type: str | None = None,
) -> dict[str, Any]:
    """The predicted size of the result against the source's, with the warning if it would not
    be meaningfully smaller (the report's ``size_check``)."""
    option = size_preview(
        info.path, [quant], removed, n_threads, cancel, embedding_type, output_type
    )[0]
    predicted = option.predicted_size_bytes
    return {
        "type": quant,
        "source_quantization": info.quantization,
        "source_size_bytes": info.size_bytes,
        "predicted_size_bytes": predicted,
        "change_percent": round(size_change_percent(info.size_bytes, predicted), 1),
        "warning": size_warning(info.quantization, info.size_bytes, quant, predicted),
    }


def _check_disk(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN_BYTES:
        raise SlmdeskError(
            f"Not enough disk space in {folder}: {needed / 1e6:,.0f} MB needed, "
            f"{free / 1e6:,.0f} MB free."
        )


# -- single steps ----------------------------------------------------------------------------


def _partial_path(dest: Path) -> Path:
    return staging_path(dest, "partial")


def quantize(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    quant: str | QuantType,
    prune_layers: Sequence[int] = (),
    allow_requantize: bool = True,
    only_copy: bool = False,
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    overwrite: bool = False,
    importance: Path | None = None,
    embedding_type: str | None = None,
    output_type: str | None = None,
) -> Path:
    """Convert (and optionally prune) ``source`` into ``dest`` with llama.cpp, in a child.

    ``importance``: a saved importance matrix (`slmdesk.optimize.importance`) to quantize with;
    ``embedding_type`` / ``output_type``: ggml type names for the token embedding and the output
    tensor (checked against the model's rows first).

    The child writes a hidden ``.NAME.partial-PID`` file beside ``dest``; it is renamed to
    ``dest`` only when complete and removed on cancel or crash. ``progress`` receives
    ``Progress("quantizing", i, n, tensor_name, fraction)`` as each tensor starts and ends
    (``fraction``: share of the elements converted).

    Raises:
        SlmdeskError: bad source, type, block list, existing output, full disk; and
            `OptimizeCancelled` / `WorkerCrashed`.
    """
    info = source_info(source)
    qtype = quant if isinstance(quant, QuantType) else quant_type(quant, importance is not None)
    embedding_type, output_type = check_tensor_types(info, embedding_type, output_type)
    dest = Path(dest)
    removed: list[int] = []
    if prune_layers:
        from slmdesk.optimize.prune import validate_prune_layers

        removed = validate_prune_layers(info, prune_layers)
    if dest.exists() and not overwrite:
        raise SlmdeskError(f"{dest.name} already exists in {dest.parent}; choose another name.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(dest.parent)
    estimate = info.weights_bytes * ((qtype.bits_per_weight or 16) / 16 + 0.1)
    _check_disk(dest.parent, int(min(estimate, info.weights_bytes * 2.2)))
    partial = _partial_path(dest)

    def cleanup() -> None:
        with contextlib.suppress(OSError):
            partial.unlink()
        for leftover in partial.parent.glob(f".{partial.name}.meta.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()

    run_worker(
        {
            "kind": "quantize",
            "source": str(info.path),
            "dest": str(partial),
            "ftype": qtype.ftype,
            "allow_requantize": allow_requantize,
            "only_copy": only_copy,
            "prune_layers": removed,
            "n_threads": n_threads,
            "imatrix": str(importance) if importance is not None else None,
            "embedding_type": embedding_type,
            "output_type": output_type,
        },
        progress,
        cancel,
        stage="quantizing",
        cleanup=cleanup,
    )
    try:
        n = read_tensor_count(partial)
        os.replace(partial, dest)
    except BaseException:
        cleanup()
        raise
    if progress is not None:
        # llama.cpp counts the source's tensors, pruned ones included: close the bar at 100%.
        progress(Progress("quantizing", n, n, "done", 1.0))
    return dest


def reference_path_for(info: GGUFInfo) -> Path:
    """Where the F16 reference of a source is cached."""
    from slmdesk.models.library import fingerprint

    folder = paths.cache_dir() / "references"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{fingerprint(info.path)[:16]}-F16.gguf"


def make_reference(
    source: str | os.PathLike[str],
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> Path:
    """The unpruned F16 reference of ``source`` (the source itself when it is unquantized).

    A quantized source is converted with ``allow_requantize`` once and cached, so later plans
    and evaluations of the same source reuse it.
    """
    info = source_info(source)
    if info.quantization.upper() in _UNQUANTIZED:
        return info.path
    target = reference_path_for(info)
    if target.exists():
        return target

    def relabel(p: Progress) -> None:
        if progress:
            progress(replace(p, stage="reference"))

    return quantize(info.path, target, "F16", (), True, False, n_threads, relabel, cancel)


def plan_pruning(
    source: str | os.PathLike[str],
    n: int,
    calibration: Path | None = None,
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    reference: Path | None = None,
    importance: Sequence[float] | None = None,
) -> PruningPlan:
    """Choose ``n`` blocks to remove by measurement (``n=0``: per-block importance only).

    ``importance`` may carry the single-block scores of an earlier ``n=0`` run on the same
    calibration text; they are reused rather than measured again.

    Method: every block is removed on its own from the F16 reference and scored by mean KL
    divergence against the unpruned reference on the calibration text (the per-block
    importance). Then a greedy search in the spirit of SLEB re-scores sets: starting from the
    best single block, each step adds the block that gives the lowest measured KLD *together
    with the blocks already chosen*, among the most promising blocks; for pairs, the pairs of
    the four best single blocks are measured too. The chosen set is the best measured set, so
    its reported KLD is verified, not a sum of estimates. ``progress`` gets
    ``Progress("planning", done, total, "blocks 3,7")``.
    """
    from slmdesk.optimize.evaluate import text_sha256
    from slmdesk.optimize.prune import check_prunable

    info = source_info(source)
    check = check_prunable(info)
    if not check.allowed:
        raise SlmdeskError(f"Cannot prune {info.path.name}: {check.reason}.")
    if n < 0 or n >= info.block_count:
        raise SlmdeskError(
            f"Cannot remove {n} of {info.block_count} blocks: choose 1 to {info.block_count - 1}."
        )
    if importance is not None and len(importance) != info.block_count:
        raise SlmdeskError(
            f"The block importance has {len(importance)} entries; the model has "
            f"{info.block_count} blocks. Measure it again."
        )
    from slmdesk.optimize.calibration import plan_text

    text = plan_text(calibration)
    ref = reference or make_reference(info.path, n_threads, progress, cancel)
    workdir = paths.cache_dir() / f"plan-{os.getpid()}-{int(time.time() * 1000)}"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run_worker(
            {
                "kind": "plan",
                "reference": str(ref),
                "text": text,
                "n": n,
                "n_threads": n_threads,
                "workdir": str(workdir),
                "importance": [float(v) for v in importance] if importance is not None else None,
            },
            progress,
            cancel,
            stage="planning",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return PruningPlan(
        removed=list(result["removed"]),
        kld_mean=result["kld_mean"],
        importance=list(result["importance"]),
        candidates=list(result["candidates"]),
        calibration_sha256=text_sha256(text),
        seconds=float(result["seconds"]),
    )


# Architectures whose blocks add to the residual stream only through their attention output and
# feed-forward down projections (post-norms, if any, are RMS norms, which map zero to zero):
# silencing those projections computes exactly what removing the block computes.
# -- the whole pipeline -----------------------------------------------------------------------


def default_name(
    info: GGUFInfo, quant: str, removed: Sequence[int], vocabulary: str | None = None
) -> str:
    """``<source>-pruned2-Q4_K_M`` style names for new models (``-english-code`` when trimmed)."""
    from slmdesk.models.library import model_name_for

    stem = model_name_for(info.path)
    for suffix in ("-" + info.quantization, "-" + info.quantization.lower()):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    middle = f"-pruned{len(removed)}" if removed else ""
    middle += f"-{vocabulary}" if vocabulary else ""
    return f"{stem}{middle}-{quant}"


def _nearest_smaller_type(
    info: GGUFInfo, target_size: int, exclude: str, preview: list[TypeOption]
) -> TypeOption | None:
    smaller = [
        o
        for o in preview
        if o.available and o.name != exclude and o.predicted_size_bytes <= target_size
    ]
    return max(smaller, key=lambda o: o.predicted_size_bytes) if smaller else None


def optimize(
    request: OptimizeRequest,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    warn: Callable[[str], None] | None = None,
) -> OptimizeResult:
    """The whole run (`_optimize_steps`) with all its steps in one worker child."""
    with worker_session():
        return _optimize_steps(request, progress, cancel, warn)


def _optimize_steps(
    request: OptimizeRequest,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    warn: Callable[[str], None] | None = None,
) -> OptimizeResult:
    """Prune (given blocks, or ``prune_count`` chosen by `plan_pruning`) and quantize a model.

    Steps: validate everything first (type, embedding and output types, blocks, name, disk) ->
    F16 reference when needed -> plan -> importance matrix on the calibration text (cached; when
    the type benefits or ``imatrix`` asks) -> quantize into the models folder -> evaluate
    against the reference on the held-out
    text -> when pruning, quantize the unpruned source to the nearest smaller type and evaluate
    it too, and recommend the better of the two for that size -> register in the library with
    provenance ``{source, removed_blocks, type, calibration_sha256, report}``.

    Once the blocks are known (before the conversion), the predicted size is checked against the
    source's: a type that would not make the file meaningfully smaller gets a specific warning,
    passed to ``warn`` at once (on the calling thread) and kept in the report.
    """
    from slmdesk.models.library import Library
    from slmdesk.optimize.evaluate import default_text, evaluate, text_sha256
    from slmdesk.optimize.prune import validate_prune_layers

    started = time.perf_counter()
    info = source_info(request.source)
    known = QUANT_TYPES.get(canonical_name(request.quant))
    with_imatrix = known is not None and uses_imatrix(known, request.imatrix)
    qtype = quant_type(request.quant, with_imatrix)
    embedding_type, output_type = check_tensor_types(
        info, request.embedding_type, request.output_type
    )
    warnings: list[str] = []
    warning = requantize_warning(info)
    if warning:
        warnings.append(warning)
    if request.prune_layers and request.prune_count:
        raise SlmdeskError("Give either a number of blocks to prune or the blocks, not both.")
    removed: list[int] = []
    if request.prune_layers:
        removed = validate_prune_layers(info, request.prune_layers)
    elif request.prune_count:
        from slmdesk.optimize.prune import check_prunable

        check = check_prunable(info)
        if not check.allowed:
            raise SlmdeskError(f"Cannot prune {info.path.name}: {check.reason}.")
        if not 0 < request.prune_count < info.block_count:
            raise SlmdeskError(
                f"Cannot remove {request.prune_count} of {info.block_count} blocks: "
                f"choose 1 to {info.block_count - 1}."
            )
    pruning = bool(removed or request.prune_count)
    from slmdesk.optimize.calibration import calibration_chunks

    chunks = calibration_chunks(request.calibration) if pruning or with_imatrix else []
    calibration_text = "\n\n".join(chunks)
    models = paths.models_dir()
    if request.vocabulary:
        from slmdesk.optimize.vocab.charsets import find_language_set

        find_language_set(request.vocabulary)
    name = request.name or default_name(
        info, qtype.name, removed or [0] * (request.prune_count or 0), request.vocabulary
    )
    if name.lower().endswith(".gguf"):
        name = name[:-5]
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise SlmdeskError(f"{name!r} is not a usable model name.")
    dest = models / f"{name}.gguf"
    if dest.exists():
        raise SlmdeskError(f"A model file named {dest.name} already exists; choose another --name.")
    for folder in (models, paths.cache_dir(), paths.cache_dir() / "references"):
        remove_stale(folder)
    _check_disk(models, int(info.weights_bytes * ((qtype.bits_per_weight or 16) / 16 + 0.1)))

    need_reference = pruning or request.evaluate
    reference = (
        make_reference(info.path, request.n_threads, progress, cancel) if need_reference else None
    )
    plan: PruningPlan | None = None
    if request.prune_count and not removed:
        plan = plan_pruning(
            info.path,
            request.prune_count,
            request.calibration,
            request.n_threads,
            progress,
            cancel,
            reference,
            request.importance,
        )
        removed = plan.removed
        if request.name is None:
            name = default_name(info, qtype.name, removed, request.vocabulary)
            dest = models / f"{name}.gguf"
            if dest.exists():
                raise SlmdeskError(f"A model file named {dest.name} already exists; choose --name.")

    checked = size_check(
        info, qtype.name, removed, request.n_threads, cancel, embedding_type, output_type
    )
    if checked["warning"]:
        warnings[:] = [checked["warning"]]  # it says what the generic re-quantize warning says
        if warn is not None:
            warn(checked["warning"])
    importance = None
    if with_imatrix:
        from slmdesk.optimize.importance import ensure_importance

        importance = ensure_importance(
            reference or info.path, chunks, request.n_threads, progress, cancel
        )
    # Prune from the F16 reference when one exists (no double rounding), else from the source.
    convert_from = reference if (reference is not None and removed) else info.path
    # Written and evaluated under a hidden name: the library lists it only once it is complete.
    staged = staging_path(dest, "optimizing")
    quantize(
        convert_from,
        staged,
        qtype,
        removed,
        True,
        False,
        request.n_threads,
        progress,
        cancel,
        importance=importance.path if importance else None,
        embedding_type=embedding_type,
        output_type=output_type,
    )
    report: dict[str, Any] = {
        "source": str(info.path),
        "source_quantization": info.quantization,
        "reference": str(reference) if reference else None,
        "type": qtype.name,
        "imatrix": importance is not None,
        "importance": importance.as_dict() if importance else None,
        "embedding_type": embedding_type,
        "output_type": output_type,
        "removed_blocks": removed,
        "size_before": info.size_bytes,
        "size_after": staged.stat().st_size,
        "size_check": checked,
        "warnings": warnings,
    }
    try:
        if request.vocabulary:
            # Trimmed first, so the evaluation and the speed figures are the final file's.
            from slmdesk.optimize.vocab.step import trim_in_place

            report["vocabulary"] = trim_in_place(
                staged, request.vocabulary, request.n_threads, progress, cancel
            )
            report["size_after"] = staged.stat().st_size
        if plan is not None:
            report["plan"] = plan.as_dict()
        heldout = default_text()
        if request.evaluate and reference is not None:
            evaluation = evaluate(staged, reference, heldout, request.n_threads, progress, cancel)
            report["eval"] = evaluation.as_dict()
            report["eval_text_sha256"] = text_sha256(heldout)
            report["speed"] = _speed_against_source(
                info,
                reference,
                staged,
                qtype,
                removed,
                heldout,
                request,
                progress,
                cancel,
                importance.path if importance else None,
            )
            if removed and request.compare:
                report["comparison"] = _compare_plain(
                    info,
                    reference,
                    staged,
                    qtype.name,
                    evaluation.kld_mean,
                    heldout,
                    request,
                    progress,
                    cancel,
                    importance.path if importance else None,
                )
    except BaseException:
        with contextlib.suppress(OSError):
            staged.unlink()
        raise
    report["seconds"] = time.perf_counter() - started
    provenance = {
        "source": str(info.path),
        "removed_blocks": removed,
        "type": qtype.name,
        "imatrix": importance is not None,
        "embedding_type": embedding_type,
        "output_type": output_type,
        "calibration_sha256": text_sha256(calibration_text) if pruning or importance else None,
        "report": report,
    }
    if dest.exists():
        with contextlib.suppress(OSError):
            staged.unlink()
        raise SlmdeskError(
            f"A model file named {dest.name} appeared meanwhile; choose another --name."
        )
    os.replace(staged, dest)
    entry = Library().add_managed_file(dest, provenance=provenance, name=name)
    return OptimizeResult(dest, entry.name, report, warnings)


def _speed_against_source(
    info: GGUFInfo,
    reference: Path,
    result_path: Path,
    qtype: QuantType,
    removed: Sequence[int],
    text: str,
    request: OptimizeRequest,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    importance: Path | None = None,
) -> dict[str, Any]:
    """The result's decode speed against the source at the same type (the report's ``speed``).

    Why: the evaluation's speed is against the F16 reference, so a pruned Q4_K_M model looks
    slower than its own source did. A pruned result is compared with the unpruned model at its
    own type (the source itself when it has that type, else converted for this comparison and
    removed after), with the same embedding and output types, so the figure is what pruning gave;
    a plain conversion with the source as it is. Both are measured in one child, back to back, so
    the machine's load weighs on both alike.
    """
    from slmdesk.models.quant_types import canonical_name

    def relabel(p: Progress) -> None:
        if progress is not None:
            progress(replace(p, stage="speed"))

    baseline, made = info.path, None
    baseline_type = info.quantization
    if removed:
        baseline_type = qtype.name
        if canonical_name(info.quantization) != qtype.name:
            if reference != info.path and qtype.name == "F16":
                baseline = reference
            else:
                made = paths.cache_dir() / f"compare-{os.getpid()}-speed-{qtype.name}.gguf"
                baseline = quantize(
                    reference,
                    made,
                    qtype,
                    (),
                    True,
                    False,
                    request.n_threads,
                    relabel,
                    cancel,
                    overwrite=True,
                    importance=importance,
                    embedding_type=request.embedding_type,
                    output_type=request.output_type,
                )
    try:
        measured = run_worker(
            {
                "kind": "speed",
                "models": [str(result_path), str(baseline)],
                "text": text,
                "n_threads": request.n_threads,
            },
            relabel,
            cancel,
            stage="speed",
        )
    finally:
        if made is not None:
            with contextlib.suppress(OSError):
                made.unlink()
    speed, base = (float(v) for v in measured["tokens_per_second"])
    ratio = speed / base if base > 0 else None
    label = f"the source at {baseline_type}"
    return {
        "tokens_per_second": speed,
        "baseline_tokens_per_second": base,
        "ratio": ratio,
        "baseline": label,
        "baseline_type": baseline_type,
        "summary": f"{ratio:.2f}× the speed of {label}" if ratio else f"compared with {label}",
    }


def _compare_plain(
    info: GGUFInfo,
    reference: Path,
    pruned: Path,
    pruned_type: str,
    pruned_kld: float,
    text: str,
    request: OptimizeRequest,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    importance: Path | None = None,
) -> dict[str, Any]:
    """Quantize the unpruned model to the nearest smaller type and say which is better (with the
    same importance matrix and embedding and output types, when the pruned model had them)."""
    from slmdesk.optimize.evaluate import evaluate

    size = pruned.stat().st_size
    preview = size_preview(
        reference,
        None if importance else offered_types(False),
        cancel=cancel,
        embedding_type=request.embedding_type,
        output_type=request.output_type,
        imatrix=importance is not None,
    )
    option = _nearest_smaller_type(info, size, "", preview)
    if option is None:
        return {
            "type": None,
            "recommendation": (
                f"No plain quantization is as small as the pruned model ({size / 1e6:.0f} MB): "
                "pruning is the only way to this size."
            ),
        }
    tmp = paths.cache_dir() / f"compare-{os.getpid()}-{option.name}.gguf"
    try:
        quantize(
            reference,
            tmp,
            option.name,
            (),
            True,
            False,
            request.n_threads,
            progress,
            cancel,
            overwrite=True,
            importance=importance,
            embedding_type=request.embedding_type,
            output_type=request.output_type,
        )
        other = evaluate(tmp, reference, text, request.n_threads, progress, cancel)
        other_size = tmp.stat().st_size
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    better = "pruned" if pruned_kld <= other.kld_mean else "quantized"
    if better == "pruned":
        text_out = (
            f"Pruning + {pruned_type} is better for this size: KLD {pruned_kld:.3f} vs "
            f"{other.kld_mean:.3f} for the unpruned model at {option.name} ({other_size / 1e6:.0f} MB)."
        )
    else:
        text_out = (
            f"Plain {option.name} without pruning is better for about this size: KLD "
            f"{other.kld_mean:.3f} ({other_size / 1e6:.0f} MB) vs {pruned_kld:.3f} for the pruned "
            "model — prefer it unless you need the pruned model's speed."
        )
    return {
        "type": option.name,
        "size_bytes": other_size,
        "eval": other.as_dict(),
        "better": better,
        "recommendation": text_out,
    }
