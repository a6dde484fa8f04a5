"""One worker child per optimize run: every step goes to the same process; cancel and crashes still
end it cleanly."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from slmdesk.common import paths
from slmdesk.optimize import pipeline as opt
from slmdesk.optimize.worker_process import (
    OptimizeCancelled,
    WorkerCrashed,
    run_worker,
    worker_session,
)


def _children() -> list[int]:
    return [c.pid for c in psutil.Process().children()]


def _hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.glob(".*") if p.is_file()] if folder.exists() else []


def test_every_step_of_a_run_goes_to_one_child(tiny_model: Path) -> None:
    pids_by_stage: dict[str, set[int]] = {}

    def seen(p: opt.Progress) -> None:
        pids_by_stage.setdefault(p.stage, set()).update(_children())

    result = opt.optimize(opt.OptimizeRequest(tiny_model, "Q4_K_M", name="one"), progress=seen)
    assert result.path.exists()
    assert {"quantizing", "evaluating", "speed"} <= set(pids_by_stage)
    all_pids = set().union(*pids_by_stage.values())
    assert len(all_pids) == 1, pids_by_stage
    assert _children() == []  # the child ends with the run


def test_cancel_mid_run_kills_the_child_and_leaves_no_partial_file(tiny_model: Path) -> None:
    stages: list[str] = []

    def seen(p: opt.Progress) -> None:
        stages.append(p.stage)

    with pytest.raises(OptimizeCancelled):
        opt.optimize(
            opt.OptimizeRequest(tiny_model, "Q4_K_M", name="cancelled"),
            progress=seen,
            cancel=lambda: "quantizing" in stages,
        )
    models = paths.models_dir()
    assert not (models / "cancelled.gguf").exists()
    assert _hidden_files(models) == []
    assert _children() == []


def test_a_child_killed_mid_step_gives_the_crash_sentence(tiny_model: Path) -> None:
    def kill_at_evaluation(p: opt.Progress) -> None:
        if p.stage == "evaluating":
            for pid in _children():
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(WorkerCrashed, match="optimizer process was killed by signal 9"):
        opt.optimize(
            opt.OptimizeRequest(tiny_model, "Q8_0", name="crashed"), progress=kill_at_evaluation
        )
    models = paths.models_dir()
    assert not (models / "crashed.gguf").exists()
    assert _hidden_files(models) == []
    assert _children() == []


def test_a_session_replaces_a_dead_child_and_keeps_one_after_an_error(tiny_model: Path) -> None:
    job = {"kind": "dry_run", "source": str(tiny_model), "ftypes": {"a": 7}}
    with worker_session() as session:
        run_worker(job)
        first = session.pid
        run_worker(job)
        assert first is not None and session.pid == first and session.started == 1
        os.kill(first, signal.SIGKILL)
        psutil.Process(first).wait(timeout=30)
        assert run_worker({**job, "ftypes": {}}) == {"types": {}}
        assert session.pid not in (None, first) and session.started == 2
        with pytest.raises(opt.SlmdeskError, match="Unknown optimizer job"):
            run_worker({"kind": "nonsense"})
        assert run_worker({**job, "ftypes": {}}) == {"types": {}}  # an error keeps the child
        assert session.started == 2
    assert _children() == []
