"""The importance matrix, measured and loaded in the optimizer child (see `slmdesk.llama.imatrix`).

The parent (`slmdesk.optimize.importance`) decides where the file is cached and whether it can be
reused; this side only measures the calibration text through the model and writes the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.llama.imatrix import load_importance, measure_importance, save_importance
from slmdesk.llama.scoring import ModelRunner

# Tokens per measured chunk: llama-imatrix's default context is 512; the calibration set's
# chunks are a few hundred tokens each, so most of them are read whole.
CHUNK_TOKENS = 512


def measure_to_file(
    job: dict[str, Any], progress: Callable[[str, int, int, str], None]
) -> dict[str, Any]:
    """Measure the importance matrix of ``job["model"]`` on ``job["texts"]``; save it to
    ``job["dest"]`` (written under a temporary name, then renamed)."""
    n_threads = int(job.get("n_threads") or 2)
    chunk = int(job.get("chunk_tokens") or CHUNK_TOKENS)
    matrix = measure_importance(
        lambda callback: ModelRunner(job["model"], chunk, n_threads, eval_callback=callback),
        [str(t) for t in job["texts"]],
        chunk,
        progress=lambda done, total: progress("importance", done, total, f"chunk {done}"),
    )
    save_importance(matrix, Path(job["dest"]), str(job.get("dataset") or "calibration"))
    return {"path": job["dest"], "chunks": matrix.chunks, "tokens": matrix.tokens}


def load_means(path: str | None) -> dict[str, np.ndarray] | None:
    """The per-column importance values a conversion takes, from a saved file (None: none)."""
    return load_importance(Path(path)).means() if path else None
