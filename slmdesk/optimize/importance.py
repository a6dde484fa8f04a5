"""The importance matrix of an optimize run, on the parent's side: where it is cached, and when a
saved one can be reused.

Why cached: measuring it reads the whole calibration text through the model (about a minute for
Gemma 3 270M on two cores); a second plan of the same model and text — another type, another
embedding type, the fit search's candidates — reuses the file. The key is the measured model's
fingerprint and the calibration text's hash, so a changed model or text is measured again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.optimize.worker_process import (
    CancelCheck,
    ProgressCallback,
    run_worker,
)


@dataclass(frozen=True)
class Importance:
    """A saved importance matrix and how this run got it."""

    path: Path
    reused: bool
    calibration_sha256: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report's ``importance``)."""
        return {
            "path": str(self.path),
            "reused": self.reused,
            "calibration_sha256": self.calibration_sha256,
            "seconds": round(self.seconds, 3),
        }


def importance_folder() -> Path:
    """Where importance matrices are cached (beside the F16 references)."""
    folder = paths.cache_dir() / "importance"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def importance_path_for(model: Path, calibration_sha256: str) -> Path:
    """The cache file of ``model``'s importance matrix on a calibration text."""
    from slmdesk.models.library import fingerprint

    return importance_folder() / f"{fingerprint(model)[:16]}-{calibration_sha256[:16]}.imatrix"


def ensure_importance(
    model: Path,
    texts: list[str],
    n_threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> Importance:
    """The importance matrix of ``model`` on ``texts``: the cached file, or measured in the
    worker child and saved (a cancel or a crash leaves no partial file)."""
    from slmdesk.optimize.evaluate import text_sha256

    digest = text_sha256("\n\n".join(texts))
    target = importance_path_for(model, digest)
    if target.is_file():
        return Importance(target, True, digest, 0.0)
    partial = target.with_name(target.name + ".partial")  # save_importance's temporary name

    def cleanup() -> None:
        partial.unlink(missing_ok=True)

    started = time.perf_counter()
    run_worker(
        {
            "kind": "imatrix",
            "model": str(model),
            "texts": texts,
            "dest": str(target),
            "n_threads": n_threads,
        },
        progress,
        cancel,
        stage="importance",
        cleanup=cleanup,
    )
    return Importance(target, False, digest, time.perf_counter() - started)
