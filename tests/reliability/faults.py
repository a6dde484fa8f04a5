"""The fault classes of docs/RELIABILITY.md outside the GGUF fuzzer, and where their tests live.

A pytest hook (tests/conftest.py) records the outcome of every test in these files to
``faults.json`` in the results folder; ``python -m tests.reliability`` turns that into a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.reliability.fuzz import results_dir

RESULTS_NAME = "faults.json"

# fault class -> test files (or ``file::test``, relative to the repository) that exercise it.
FAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "damaged or hostile GGUF files (reader, checks, escape codes)": (
        "tests/models/test_gguf_hostile.py",
        "tests/models/test_gguf_info.py",
    ),
    "files that crash llama.cpp (load check in a child process)": (
        "tests/chat/test_load_probe.py",
    ),
    "hostile chat templates (time, memory, output bombs)": (
        "tests/chat/test_hostile_templates.py",
        "tests/chat/test_engine_templates.py",
    ),
    "hostile or failing Hub (lying sizes, names, status codes, corrupt bytes)": (
        "tests/hub/test_hostile_hub.py",
        "tests/hub/test_hub_errors.py",
        "tests/hub/test_hub_downloads.py",
    ),
    "damaged, read-only, locked or full conversation databases": (
        "tests/chat/test_store_faults.py",
        "tests/ui/test_chat_db_faults.py",
    ),
    "a damaged library entry or index; two processes changing the library": (
        "tests/models/test_library_owns_index.py",
        "tests/models/test_library_concurrency.py",
    ),
    "kill -9 mid-operation (reply, import, optimize, download)": (
        "tests/ui/test_killed_mid_reply.py",
        "tests/optimize/test_optimize_killed.py",
        "tests/hub/test_hub_cli.py::test_killed_pull_resumes_on_rerun",
        "tests/models/test_library_owns_index.py::test_a_killed_import_leaves_a_partial_that_the_next_start_removes",
        "tests/chat/test_conversations.py::test_a_process_killed_mid_writing_keeps_everything_committed",
    ),
    "odd command lines, unusable data folders, full disks in the CLI": (
        "tests/cli/test_cli_arguments.py",
        "tests/cli/test_cli_data_folder.py",
        "tests/cli/test_logging.py",
    ),
}


def fault_class_of(nodeid: str) -> str | None:
    """The fault class of a test (a whole file, or ``file::test`` entries); None for others."""
    path, _, rest = nodeid.partition("::")
    test = rest.split("[")[0]
    for name, places in FAULT_CLASSES.items():
        if f"{path}::{test}" in places:
            return name
    for name, places in FAULT_CLASSES.items():
        if path in places:
            return name
    return None


def record(outcomes: dict[str, dict[str, Any]]) -> None:
    """Merge ``{test id: {"class", "outcome", "seconds"}}`` into the results file."""
    if not outcomes:
        return
    path = results_dir() / RESULTS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(outcomes)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(old, indent=1, sort_keys=True))
    tmp.replace(path)


def load() -> dict[str, dict[str, Any]]:
    """What `record` has kept (empty when no fault test ran yet)."""
    path = results_dir() / RESULTS_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def table(outcomes: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown lines: one row per fault class."""
    lines = [
        "## Faults outside model files (from the test suite)",
        "",
        "Each row counts the tests of that class in the last run that recorded them; every test",
        "uses the real component (real SQLite files, the real Hub client against a local Hub, real",
        "processes killed with SIGKILL, tmpfs mounts for full disks where the machine allows it).",
        "",
        "| fault class | tests | passed | failed | skipped | slowest test s | test files |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, files in FAULT_CLASSES.items():
        rows = [o for o in outcomes.values() if o.get("class") == name]
        count = {
            k: sum(1 for o in rows if o["outcome"] == k) for k in ("passed", "failed", "skipped")
        }
        slowest = max((o.get("seconds", 0.0) for o in rows), default=0.0)
        shown = ", ".join(f"`{Path(f.split('::')[0]).name}`" for f in files)
        lines.append(
            f"| {name} | {len(rows)} | {count['passed']} | {count['failed']} | {count['skipped']} "
            f"| {slowest:.1f} | {shown} |"
        )
    lines.append("")
    return lines
