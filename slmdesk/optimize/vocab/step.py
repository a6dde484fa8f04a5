"""The optimize pipeline's vocabulary step: trim a converted model in place, if the gate allows.

The trimmed copy is judged against the model it came from (the same type, so any difference is
the trim's alone) on the set's held-out texts, in a child process like all other llama.cpp work;
a trim that fails the gate is removed and the run stops with the figures.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize.leftovers import staging_path
from slmdesk.optimize.vocab.charsets import heldout_texts
from slmdesk.optimize.vocab.trim import ProgressCallback, trim_vocabulary
from slmdesk.optimize.vocab.verify import TrimCheck, gate_failure
from slmdesk.optimize.worker_process import CancelCheck, run_worker


def check_in_child(
    original: Path,
    trimmed: Path,
    texts: list[str],
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> TrimCheck:
    """`verify_trim` run in the optimizer's child process (a llama.cpp crash ends only it)."""
    found = run_worker(
        {
            "kind": "vocab_check",
            "original": str(original),
            "trimmed": str(trimmed),
            "texts": texts,
            "n_threads": n_threads,
        },
        progress,
        cancel,
        stage="checking vocabulary",
    )
    return TrimCheck(**{k: v for k, v in found.items() if k != "passed"})


def trim_in_place(
    model: Path,
    language_set: str,
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    texts: list[str] | None = None,
) -> dict[str, Any]:
    """Replace ``model`` by its trim to ``language_set`` when the trim passes the gate.

    The gate is judged on ``texts`` (default: the set's held-out texts).

    Returns the report's ``vocabulary`` entry. Raises `SlmdeskError` with the figures when the
    trim fails the gate (``model`` is then left as it was).
    """
    model = Path(model)
    trimmed = staging_path(model.with_name(model.name + ".vocab"), "partial")
    try:
        result = trim_vocabulary(model, trimmed, language_set, progress)
        check = check_in_child(
            model,
            trimmed,
            heldout_texts(language_set) if texts is None else texts,
            n_threads,
            progress,
            cancel,
        )
        refusal = gate_failure(check)
        if refusal:
            raise SlmdeskError(
                f"{refusal[:-1]}: {check.identical_texts} of {check.texts} texts tokenized "
                f"alike, KL divergence {check.kld_mean:.4f} over {check.kept_tokens} kept tokens."
            )
        os.replace(trimmed, model)
    finally:
        with contextlib.suppress(OSError):
            trimmed.unlink()
    return {
        "set": language_set,
        "kept_tokens": result.kept_tokens,
        "original_tokens": result.original_tokens,
        "size_before_bytes": result.source_size_bytes,
        "size_after_bytes": result.size_bytes,
        "check": check.as_dict(),
    }
