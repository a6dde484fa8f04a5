"""A make-it-fit run takes its importance matrix from the cache optimize runs share, and runs every
step in one worker child."""

from __future__ import annotations

from pathlib import Path

import psutil

from slmdesk.common import paths
from slmdesk.optimize.fit.run import FitRequest, FitResult, make_it_fit
from slmdesk.optimize.fit.target import FitTarget
from slmdesk.optimize.worker_process import Progress


def _run(model: Path, children: set[int], stages: list[str]) -> FitResult:
    def seen(p: Progress) -> None:
        stages.append(p.stage)
        children.update(c.pid for c in psutil.Process().children())

    request = FitRequest(
        model,
        FitTarget(max_size_bytes=10**9),
        types=["Q4_K_M"],
        with_imatrix=True,
        embeddings=[None],
        max_builds=2,
        exhaustive=True,
    )
    result = make_it_fit(request, progress=seen)
    assert any(o.built and o.candidate.imatrix for o in result.outcomes)
    return result


def test_the_importance_matrix_is_measured_once_and_the_run_uses_one_child(
    tiny_model: Path,
) -> None:
    children: set[int] = set()
    stages: list[str] = []
    first = _run(tiny_model, children, stages)
    assert "fit-importance" in stages and "importance" not in stages
    assert first.timings["imatrix_seconds"] > 0
    cached = list((paths.cache_dir() / "importance").glob("*.imatrix"))
    assert len(cached) == 1
    assert len(children) == 1, "the reference, the importance matrix and the search: one child"

    stages.clear()
    second = _run(tiny_model, set(), stages)
    assert "fit-importance" not in stages
    assert second.timings["imatrix_seconds"] == 0.0
    assert list((paths.cache_dir() / "importance").glob("*.imatrix")) == cached
    # Same winner, no name given: the second model gets a free name instead of an error.
    assert first.path is not None and second.path is not None
    assert second.path.name == first.path.name.replace(".gguf", "-2.gguf")
    assert first.path.exists() and second.path.exists()
