"""Helpers shared by the benchmarks: result files, tables, medians."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
