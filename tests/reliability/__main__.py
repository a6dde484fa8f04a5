"""``python -m tests.reliability``: write docs/RELIABILITY.md from the latest test results.

The fuzz and hostile-file tests leave JSON in the results folder (``build/reliability`` or
``SLMDESK_RELIABILITY_DIR``): ``fuzz-tiny.json``, ``fuzz-gemma.json``, ``hostile.json`` and,
after a ``--long`` run, ``hostile-raw.json``. This renders them as tables; nothing is measured
here. ``--check`` prints the page instead of writing it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tests.reliability import faults
from tests.reliability.fuzz import CASE_MEMORY_MB, CASE_SECONDS, REPO, results_dir
from tests.reliability.mutate import KINDS

DOC = REPO / "docs" / "RELIABILITY.md"
_SOURCES = {
    "tiny": "tiny synthesized llama (slmdesk.models.synth), whole file",
    "gemma": "Gemma 3 270M Q4_K_M header (weights left as a hole)",
}


def _load(name: str) -> Any:
    path = results_dir() / name
    return json.loads(path.read_text()) if path.exists() else None


def _fuzz_section(runs: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Fuzzing the reader",
        "",
        "Each case damages a valid model one way (seeded: case *n* of source *s* is",
        '`random.Random(f"{s}:{n}")` in `tests/reliability/mutate.py`), then reads it as the app',
        "does: `read_gguf_info`, the summary, the memory estimate and the load context. A case",
        f"passes if it ends as an accepted file or a clean refusal (`InvalidModelError`, one line of at "
        f"most 300 characters, no control characters) within {CASE_SECONDS:g} s of CPU and "
        f"{CASE_MEMORY_MB:g} MB of peak-RSS growth, measured per case in a worker process.",
        "",
    ]
    for source, run in runs.items():
        lines += [
            f"### {_SOURCES.get(source, source)}",
            "",
            f"{run['cases']:,} cases, {run['seconds']:,} s in all, measured {run['measured_at']}.",
            "",
            "| input class | cases | accepted | refused | unexpected error | bad message | hang "
            "| over 2 s | over 500 MB | max CPU s | max wall s | max RSS growth MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        totals: dict[str, float] = {}
        for kind in KINDS:
            stats = run["by_kind"].get(kind)
            if not stats:
                continue
            for key, value in stats.items():
                totals[key] = (
                    max(totals.get(key, 0), value)
                    if key.startswith("max")
                    else totals.get(key, 0) + value
                )
            lines.append(_row(kind, stats))
        lines.append(_row("**all**", totals))
        loads = run.get("loads") or {}
        crashes = loads.get("crashes", [])
        lines += [
            "",
            f"Accepted files loaded with real llama.cpp in a child process (load + 3 tokens): "
            f"{loads.get('tried', 0)} tried, {loads.get('loaded', 0)} ran, "
            f"{loads.get('refused', 0)} refused with an error, **{len(crashes)} crashed**, "
            f"{len(loads.get('hangs', []))} hung.",
        ]
        for crash in crashes:
            lines.append(
                f"- crash: case {crash['number']} ({crash['kind']}: {crash['target']}) {crash.get('signal', '')}"
            )
        problems = run.get("failures", []) + run.get("worker_crashes", [])
        if problems:
            lines.append("")
            lines.append("Failing cases (replay with their number):")
            for p in problems[:20]:
                lines.append(
                    f"- case {p.get('number', p.get('cases'))}: {p.get('kind', '')} {p.get('outcome', '')} {str(p.get('detail', p.get('stderr', '')))[:160]}"
                )
        lines.append("")
    return lines


def _row(label: str, s: dict[str, Any]) -> str:
    return (
        f"| {label} | {int(s['cases']):,} | {int(s['accepted']):,} | {int(s['refused']):,} | "
        f"{int(s['unexpected'])} | {int(s['bad_message'])} | {int(s['hangs'])} | "
        f"{int(s['over_time'])} | {int(s['over_memory'])} | {s['max_cpu_s']:.3f} | "
        f"{s['max_wall_s']:.3f} | {s['max_rss_growth_mb']:.1f} |"
    )


def _hostile_section(hostile: list[dict[str, Any]], raw: list[dict[str, Any]] | None) -> list[str]:
    by_name = {r["name"]: r for r in raw or []}
    lines = [
        "## Hostile files (one per fault found)",
        "",
        "Built by `tests/reliability/hostile.py` from the tiny model; `tests/models/test_gguf_hostile.py`",
        "checks each is refused with the sentence shown, and that loading them through the engine in",
        "a child process never crashes. *Raw llama.cpp* is what llama-cpp-python does with the file",
        "when nothing checks it first (`--long` only; SIGABRT = the whole app would die). The",
        '2^31-1 context file "loads", but its first decode took 54-73 s and 8.4 GB of peak RSS',
        "when measured alone (`/usr/bin/time`): llama.cpp keeps about 4 bytes per trained position.",
        "",
        "| file | fault | raw llama.cpp | slmdesk says | CPU s |",
        "|---|---|---|---|---:|",
    ]
    for case in hostile:
        outcome = by_name.get(case["name"], {})
        raw_text = outcome.get("raw", "not run")
        if outcome.get("raw") == "loaded":
            raw_text += f" ({outcome['seconds']:.0f} s)"
        message = case["message"].replace("|", "\\|")
        lines.append(
            f"| {case['name']} | {case['fault']} | {raw_text} | {message} | {case['cpu_s']:.3f} |"
        )
    lines.append("")
    return lines


def render() -> str:
    """The whole page, from whatever results exist."""
    runs = {s: r for s in ("tiny", "gemma") if (r := _load(f"fuzz-{s}.json"))}
    hostile = _load("hostile.json") or []
    raw = _load("hostile-raw.json")
    total = sum(r["cases"] for r in runs.values())
    unexpected = sum(
        k["unexpected"] + k["bad_message"] for r in runs.values() for k in r["by_kind"].values()
    )
    slow = sum(k["over_time"] + k["hangs"] for r in runs.values() for k in r["by_kind"].values())
    heavy = sum(k["over_memory"] for r in runs.values() for k in r["by_kind"].values())
    crashes = sum(
        len(r.get("loads", {}).get("crashes", [])) + len(r.get("worker_crashes", []))
        for r in runs.values()
    )
    lines = [
        "# Reliability: damaged and hostile input",
        "",
        "Generated by `python -m tests.reliability` from the results of the fuzz and hostile-file",
        "tests; do not edit by hand.",
        "",
        f"**Summary:** {total:,} fuzz cases; {crashes} native crashes (reader workers and llama.cpp",
        f"loads of accepted files); {unexpected} unexpected exception types or unclean messages;",
        f"{slow} cases over {CASE_SECONDS:g} s of CPU or hung; {heavy} over {CASE_MEMORY_MB:g} MB of",
        "peak-RSS growth.",
        "",
        "## How to rerun",
        "",
        "```",
        "pytest tests/models/test_gguf_fuzz.py tests/models/test_gguf_hostile.py --long   # 10,000 cases",
        "pytest                                   # the whole suite records the fault-class table",
        "python -m tests.reliability                                                    # rewrite this page",
        "```",
        "",
        "Without `--long` the same tests run a few hundred cases (part of the normal test run).",
        "Results go to `build/reliability/` (or `$SLMDESK_RELIABILITY_DIR`).",
        "",
    ]
    lines += _fuzz_section(runs)
    lines += _hostile_section(hostile, raw)
    lines += faults.table(faults.load())
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        print(text)
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    tmp = DOC.with_name(f".{DOC.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, DOC)
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
