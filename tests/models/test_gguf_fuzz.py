"""Fuzz the GGUF reader with seeded mutants of real models; load the accepted ones in llama.cpp.

Short by default (a few hundred cases); ``pytest --long`` runs 10,000 (9,000 on the tiny model,
1,000 on the Gemma header). Every case must end as a
clean refusal (`InvalidModelError`, one short sentence) or an accepted file within 2 s of CPU and
500 MB of peak-RSS growth; a sample of accepted files is loaded and run with real llama.cpp in a
child process, which must never die by a signal. Each run writes ``fuzz-<source>.json`` to the
reliability results folder; ``python -m tests.reliability`` turns them into docs/RELIABILITY.md.
A failure names the case number: ``random.Random(f"{source}:{number}")`` replays it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reliability.fuzz import FuzzReport, run_fuzz, save_report

# (cases, cases per worker, accepted files loaded in llama.cpp): short run, long run
_TINY = {False: (300, 300, 6), True: (9000, 500, 250)}
_GEMMA = {False: (12, 12, 0), True: (1000, 100, 15)}
_LONG_TIMEOUT = 4 * 3600  # --long runs far past the suite's per-test timeout


def _assert_clean(report: FuzzReport) -> None:
    lines = [
        f"{p.get('source')} case {p.get('number', p.get('cases'))}: {p}" for p in report.problems
    ]
    assert not lines, "\n".join(lines[:20])
    assert report.loads.get("hangs") == []


@pytest.mark.timeout(_LONG_TIMEOUT)
def test_fuzz_tiny_model(tiny_model_source: Path, tmp_path: Path, long_run: bool) -> None:
    cases, batch, loads = _TINY[long_run]
    report = run_fuzz("tiny", tiny_model_source, cases, batch, tmp_path, loads)
    save_report(report)
    _assert_clean(report)
    assert sum(k.cases for k in report.by_kind.values()) == cases
    assert report.loads["tried"] >= min(loads, 5)


@pytest.mark.integration
@pytest.mark.timeout(_LONG_TIMEOUT)
def test_fuzz_gemma_header(gemma_model: Path, tmp_path: Path, long_run: bool) -> None:
    cases, batch, loads = _GEMMA[long_run]
    report = run_fuzz("gemma", gemma_model, cases, batch, tmp_path, loads)
    save_report(report)
    shutil.rmtree(tmp_path / "samples", ignore_errors=True)
    _assert_clean(report)
    assert sum(k.cases for k in report.by_kind.values()) == cases
