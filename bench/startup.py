"""Start-up benchmark: installer size and time to an interactive window with 50 models.

``python -m bench startup [--runs 5] [--bundle dist/slmdesk/slmdesk] [--deb dist/slmdesk_*.deb]``

Figures, all measured in this run:

- compressed ``.deb`` size (target <= 110 MB) and the bundle's unpacked size;
- frozen app: process start -> main window shown and its event loop idle, with a library of 50
  (tiny, synthesized) models; median of ``--runs`` (target <= 1.5 s);
- the same from source (``python -m slmdesk``), target <= 0.8 s;
- baseline: a bare PySide6 window from the same Python (nothing of slmdesk), and the ratio of
  each figure to it — what slmdesk adds on top of Qt's own start.

The app prints a timestamp and quits once idle when ``SLMDESK_EXIT_WHEN_IDLE`` is set. Runs are
"cold" in the process sense (a new process each time) with the OS file cache warm: one unmeasured
run goes first. Qt renders offscreen unless ``--display`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, print_figures, save_results

ROOT = Path(__file__).resolve().parents[1]
IDLE_MARK = "slmdesk-idle "
BASELINE = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
w = QMainWindow(); w.resize(1100, 720); w.show()
def done():
    print(f"slmdesk-idle {time.time():.6f}", flush=True); app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def make_library(home: Path, n_models: int) -> None:
    """``n_models`` tiny GGUF files in ``home/models``; the starter model is marked removed."""
    from slmdesk.common.fileio import atomic_write_json
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    first = write_tiny_llama(home / "seed.gguf", TinyModelSpec(n_layers=1, name="Bench Model"))
    for i in range(n_models):
        shutil.copyfile(first, models / f"bench-model-{i:02d}-F16.gguf")
    first.unlink()
    (home / "config").mkdir(exist_ok=True)
    atomic_write_json(home / "config" / "library.json", {"starter_removed": True, "models": {}})


def time_to_idle(command: list[str], env: dict[str, str], timeout: float = 120.0) -> float:
    """Seconds from starting ``command`` until it prints the idle mark."""
    started = time.time()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith(IDLE_MARK):
            return float(line[len(IDLE_MARK) :]) - started
    raise RuntimeError(
        f"{command[0]} never became idle (exit {proc.returncode}): {proc.stderr.strip()[-400:]}"
    )


def measure(command: list[str], env: dict[str, str], runs: int) -> float:
    """Median time to idle over ``runs`` runs, after one warm-up run."""
    time_to_idle(command, env)
    return median([time_to_idle(command, env) for _ in range(runs)])


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str]) -> int:
    """Run the benchmark; prints a table and writes bench/results/startup.json."""
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "slmdesk" / "slmdesk")
    parser.add_argument("--deb", type=Path, default=None)
    parser.add_argument("--display", action="store_true", help="use the real display")
    args = parser.parse_args(argv)

    figures: dict[str, float | int | None] = {}
    rows: list[tuple[str, str, str]] = []
    debs = [args.deb] if args.deb else sorted((ROOT / "dist").glob("slmdesk_*.deb"))
    if debs and debs[-1].is_file():
        size = debs[-1].stat().st_size
        figures["deb_bytes"] = size
        rows.append((".deb size (compressed)", f"{size / 1e6:.1f} MB", "target <= 110 MB"))
    if args.bundle.is_file():
        unpacked = _tree_bytes(args.bundle.parent)
        figures["bundle_unpacked_bytes"] = unpacked
        rows.append(("bundle size (unpacked)", f"{unpacked / 1e6:.0f} MB", "information"))

    with tempfile.TemporaryDirectory(prefix="slmdesk-bench-startup-") as tmp:
        home = Path(tmp) / "home"
        make_library(home, args.models)
        env = dict(os.environ, SLMDESK_HOME=str(home), SLMDESK_EXIT_WHEN_IDLE="1")
        env["HF_HUB_OFFLINE"] = "1"
        if not args.display:
            env["QT_QPA_PLATFORM"] = "offscreen"
        baseline = measure([sys.executable, "-c", BASELINE], env, args.runs)
        figures["baseline_bare_qt_seconds"] = round(baseline, 3)
        rows.append(("bare PySide6 window (baseline)", f"{baseline:.3f} s", "information"))
        source = measure([sys.executable, "-m", "slmdesk"], env, args.runs)
        figures["source_seconds"] = round(source, 3)
        figures["source_vs_baseline"] = round(source / baseline, 2)
        rows.append((f"from source, {args.models} models", f"{source:.3f} s", "target <= 0.8 s"))
        rows.append(("  ratio to baseline", f"{source / baseline:.2f}x", "information"))
        if args.bundle.is_file():
            frozen = measure([str(args.bundle)], env, args.runs)
            figures["frozen_seconds"] = round(frozen, 3)
            figures["frozen_vs_baseline"] = round(frozen / baseline, 2)
            rows.append((f"frozen app, {args.models} models", f"{frozen:.3f} s", "target <= 1.5 s"))
            rows.append(("  ratio to baseline", f"{frozen / baseline:.2f}x", "information"))
        else:
            rows.append(("frozen app", "not built", "run: python packaging/build.py"))
    figures["runs"] = args.runs
    figures["models"] = args.models
    print_figures(f"startup (median of {args.runs})", rows)
    print(f"\nresults: {save_results('startup', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
