"""Run the GGUF fuzzer: mutated files through slmdesk's reader, accepted ones through llama.cpp.

Two kinds of child process keep the measurements honest and the test run alive:

- a *reader worker* (``python -m tests.reliability.fuzz worker ARGS``) runs a batch of cases:
  for each it damages a working copy of the model in place (`mutate.make_mutation`), reads it
  with `read_gguf_info`, builds the summary, the memory estimate and the load context, and
  restores the copy. It times every case (wall and CPU) under a hard limit and records the
  growth of its peak RSS over the RSS before the case (the kernel's peak mark ``VmHWM`` is reset
  before each case; where it cannot be, ``ru_maxrss`` gives a conservative upper bound).
- a *load checker* (`load_check`) loads a sample of the accepted files with real llama.cpp
  through ``slmdesk.llama`` and generates a few tokens. A file that kills it by a signal is a
  native crash, recorded with its case number (the seed); the checker restarts after it.

Working copies keep the original header and leave the tensor data as a hole (zeros) when the
model is large, so a 253 MB model costs a few MB of disk per worker.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CASE_SECONDS = 2.0  # every case must end within this (CPU time; wall time is reported too)
CASE_MEMORY_MB = 500.0  # and grow the process's peak RSS by at most this
HARD_LIMIT_SECONDS = 20.0  # a case still running after this is stopped and counted as a hang
_KEEP_WHOLE_FILE_BYTES = 64 * 1024 * 1024
_HEADER_READ_BYTES = 32 * 1024 * 1024


def results_dir() -> Path:
    """Where fuzz and hostile-file results go (``SLMDESK_RELIABILITY_DIR`` or build/reliability)."""
    return Path(os.environ.get("SLMDESK_RELIABILITY_DIR") or REPO / "build" / "reliability")


@dataclass
class KindStats:
    """Figures for one input class."""

    cases: int = 0
    accepted: int = 0
    refused: int = 0
    unexpected: int = 0
    bad_message: int = 0
    hangs: int = 0
    over_time: int = 0
    over_memory: int = 0
    max_wall_s: float = 0.0
    max_cpu_s: float = 0.0
    max_rss_growth_mb: float = 0.0

    def add(self, case: dict[str, Any]) -> None:
        self.cases += 1
        outcome = case["outcome"]
        if outcome in ("accepted", "refused", "unexpected", "bad_message"):
            setattr(self, outcome, getattr(self, outcome) + 1)
        elif outcome == "hang":
            self.hangs += 1
        self.over_time += case["cpu"] > CASE_SECONDS
        self.over_memory += case["rss_mb"] > CASE_MEMORY_MB
        self.max_wall_s = max(self.max_wall_s, case["wall"])
        self.max_cpu_s = max(self.max_cpu_s, case["cpu"])
        self.max_rss_growth_mb = max(self.max_rss_growth_mb, case["rss_mb"])


@dataclass
class FuzzReport:
    """Everything one fuzz run found, as written to ``fuzz-<source>.json``."""

    source: str
    cases: int
    by_kind: dict[str, KindStats] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    worker_crashes: list[dict[str, Any]] = field(default_factory=list)
    loads: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def problems(self) -> list[dict[str, Any]]:
        """Failures of any kind: unexpected errors, bad messages, hangs, budgets, crashes."""
        return self.failures + self.worker_crashes + list(self.loads.get("crashes", []))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["limits"] = {
            "case_seconds": CASE_SECONDS,
            "case_memory_mb": CASE_MEMORY_MB,
            "hard_limit_seconds": HARD_LIMIT_SECONDS,
        }
        data["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        return data


# -- the parent side ----------------------------------------------------------------------------


def run_fuzz(
    source: str,
    model: Path,
    cases: int,
    batch: int,
    workdir: Path,
    load_samples: int,
) -> FuzzReport:
    """Fuzz ``model`` with ``cases`` cases in reader workers of ``batch`` cases each.

    Args:
        source: a name for the model (also seeds the cases: case n uses ``f"{source}:{n}"``).
        model: the valid model file to damage.
        cases: how many cases.
        batch: cases per worker process.
        workdir: scratch folder (working copies, accepted samples).
        load_samples: how many accepted files to load with llama.cpp at most.
    """
    started = time.monotonic()
    report = FuzzReport(source, cases)
    samples_dir = workdir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    per_batch = max(1, -(-load_samples // max(1, -(-cases // batch)))) if load_samples else 0
    samples: list[dict[str, Any]] = []
    for first in range(0, cases, batch):
        count = min(batch, cases - first)
        out = workdir / f"batch-{first}.json"
        args = {
            "source": source,
            "model": str(model),
            "first": first,
            "count": count,
            "workdir": str(workdir / f"work-{first}"),
            "samples_dir": str(samples_dir),
            "samples": per_batch,
            "out": str(out),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "tests.reliability.fuzz", "worker", json.dumps(args)],
            cwd=REPO,
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=HARD_LIMIT_SECONDS * count + 300,
        )
        if proc.returncode != 0 or not out.exists():
            report.worker_crashes.append(
                {
                    "source": source,
                    "cases": f"{first}-{first + count - 1}",
                    "returncode": proc.returncode,
                    "stderr": proc.stderr[-2000:],
                }
            )
            continue
        result = json.loads(out.read_text())
        for case in result["cases"]:
            report.by_kind.setdefault(case["kind"], KindStats()).add(case)
            bad = case["outcome"] not in ("accepted", "refused")
            if bad or case["cpu"] > CASE_SECONDS or case["rss_mb"] > CASE_MEMORY_MB:
                report.failures.append({"source": source, **case})
        samples.extend(result["samples"])
    report.loads = check_loads(samples[:load_samples], workdir)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def save_report(report: FuzzReport) -> Path:
    """Write ``fuzz-<source>.json`` into `results_dir` (to a temp name, then renamed)."""
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fuzz-{report.source}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def check_loads(samples: list[dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """Load each sample with real llama.cpp in a child process; record signals as crashes."""
    results: dict[str, Any] = {"tried": 0, "loaded": 0, "refused": 0, "crashes": [], "hangs": []}
    pending = list(samples)
    while pending:
        listing = workdir / "load-list.json"
        listing.write_text(json.dumps([s["path"] for s in pending]))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.load_check", str(listing)],
            cwd=REPO,
            env=_child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        done = 0
        current: int | None = None
        assert proc.stdout is not None
        deadline = time.monotonic() + 120 + 60 * len(pending)
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "start":
                current = int(rest)
            elif word in ("loaded", "refused"):
                results["tried"] += 1
                results[word] += 1
                done = int(rest.split(" ", 1)[0]) + 1
                current = None
            if time.monotonic() > deadline:
                proc.kill()
                break
        code = proc.wait()
        if current is None and done >= len(pending):
            break
        index = current if current is not None else done
        sample = pending[index]
        results["tried"] += 1
        entry = {key: sample[key] for key in ("source", "number", "kind", "target")}
        if code < 0 and code != -signal.SIGKILL:
            entry["signal"] = signal.Signals(-code).name
            results["crashes"].append(entry)
        elif code == -signal.SIGKILL:
            results["hangs"].append(entry)
        else:
            entry["exit_code"] = code
            results["crashes"].append(entry)
        pending = pending[index + 1 :]
    return results


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


# -- the reader worker (child process) ----------------------------------------------------------


class _Hang(BaseException):
    """Raised by the alarm when a case runs past `HARD_LIMIT_SECONDS` (not an Exception, so
    nothing in the reader can swallow it)."""


def _alarm(_signum: int, _frame: object) -> None:
    raise _Hang


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) so the next case is measured on its own."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes(reset_works: bool) -> int:
    """Peak RSS since the last reset (or, where resets are not possible, since the start)."""
    if reset_works:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(args: dict[str, Any]) -> None:
    """Run one batch of cases and write the results as JSON to ``args["out"]``."""
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.hardware import MachineInfo
    from tests.reliability.gguf_edit import GGUFDoc
    from tests.reliability.mutate import make_mutation

    model = Path(args["model"])
    size = model.stat().st_size
    with open(model, "rb") as handle:
        head = handle.read(min(size, max(_HEADER_READ_BYTES, 0)))
    doc = GGUFDoc.parse(head, with_data=False)
    header_end = (doc.header_size + doc.alignment - 1) // doc.alignment * doc.alignment
    header = head[: doc.header_size]
    if size <= _KEEP_WHOLE_FILE_BYTES:
        with open(model, "rb") as handle:
            original = handle.read()
    else:
        original = head[:header_end]
    data = original[header_end:]
    workdir = Path(args["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    work = workdir / model.name
    _write_model(work, original, size)
    machine = MachineInfo(
        total_ram=8 * 1024**3, available_ram=4 * 1024**3, physical_cores=2, logical_cores=2
    )
    read_gguf_info(work)  # warm up: imports, page cache
    signal.signal(signal.SIGALRM, _alarm)
    cases: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    accepted_seen = 0
    for number in range(args["first"], args["first"] + args["count"]):
        rng = random.Random(f"{args['source']}:{number}")
        mutation = make_mutation(rng, doc, header, size)
        path = work
        if mutation.new_header is not None:
            path = workdir / f"case-{number}.gguf"
            _write_model(
                path, mutation.new_header + data, len(mutation.new_header) + size - header_end
            )
        else:
            _apply(work, mutation, original, size)
        reset_works = _reset_peak_rss()
        rss_before = _rss_bytes()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        signal.setitimer(signal.ITIMER_REAL, HARD_LIMIT_SECONDS)
        try:
            outcome, detail = _one_case(path, machine)
        except _Hang:
            outcome, detail = "hang", f"still running after {HARD_LIMIT_SECONDS:.0f} s"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        growth = max(0, _peak_rss_bytes(reset_works) - rss_before)
        case = {
            "number": number,
            "kind": mutation.kind,
            "target": mutation.target[:120],
            "outcome": outcome,
            "detail": detail[:400],
            "wall": round(wall, 4),
            "cpu": round(cpu, 4),
            "rss_mb": round(growth / 1e6, 1),
        }
        cases.append(case)
        if outcome == "accepted":
            accepted_seen += 1
            want = len(samples) < args["samples"] and (
                mutation.kind == "known-key value" or accepted_seen % 3 == 1
            )
            if want:
                sample = Path(args["samples_dir"]) / f"{args['source']}-{number}.gguf"
                if mutation.new_header is not None:
                    os.replace(path, sample)
                else:
                    _materialize(sample, work, size, mutation, len(original))
                samples.append({"path": str(sample), "source": args["source"], **case})
        if mutation.new_header is not None:
            path.unlink(missing_ok=True)
        else:
            _restore(work, mutation, original, size)
    out = Path(args["out"])
    out.write_text(json.dumps({"cases": cases, "samples": samples}))


def _one_case(path: Path, machine: Any) -> tuple[str, str]:
    """Read ``path`` as the app does; return (outcome, detail)."""
    from slmdesk.common.errors import InvalidModelError
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.hardware import context_for_load, estimate_memory

    try:
        info = read_gguf_info(path)
        json.dumps(info.summary())
        estimate_memory(info, None, machine).as_dict()
        context_for_load(info, None, machine)
        context_for_load(info, 2**31 - 1, machine)
    except InvalidModelError as exc:
        message = str(exc)
        if exc.__cause__ is not None:
            cause = exc.__cause__
            return "unexpected", f"{type(cause).__name__}: {str(cause)[:200]} (via the guard)"
        if not message_is_clean(message):
            return "bad_message", f"{len(message)} chars: {message[:200]!r}"
        return "refused", message
    except Exception as exc:
        return "unexpected", f"{type(exc).__name__}: {str(exc)[:200]!r}"
    return "accepted", ""


def message_is_clean(message: str) -> bool:
    """One line, at most 300 characters, no control characters or escape codes."""
    return 0 < len(message) <= 300 and not any(
        ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in message
    )


def _write_model(path: Path, content: bytes, size: int) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.truncate(size)


def _apply(work: Path, mutation: Any, original: bytes, size: int) -> None:
    with open(work, "r+b") as handle:
        for offset, data in mutation.writes:
            handle.seek(offset)
            handle.write(data)
        if mutation.truncate_to is not None:
            handle.truncate(mutation.truncate_to)


def _restore(work: Path, mutation: Any, original: bytes, size: int) -> None:
    with open(work, "r+b") as handle:
        for offset, data in mutation.writes:
            handle.seek(offset)
            handle.write(original[offset : offset + len(data)])
        if mutation.truncate_to is not None:
            cut = mutation.truncate_to
            if cut < len(original):
                handle.seek(cut)
                handle.write(original[cut:])
            handle.truncate(size)


def _materialize(sample: Path, work: Path, size: int, mutation: Any, kept: int) -> None:
    """Copy the damaged working file (as it is now) to ``sample``; the tensor data of a large
    model stays a hole (only the first ``kept`` bytes hold data)."""
    length = mutation.truncate_to if mutation.truncate_to is not None else size
    with open(work, "rb") as src:
        content = src.read(min(length, kept))
    _write_model(sample, content, length)


def main(argv: list[str]) -> int:
    """``python -m tests.reliability.fuzz worker ARGS_JSON``."""
    if len(argv) == 2 and argv[0] == "worker":
        worker(json.loads(argv[1]))
        return 0
    print("usage: python -m tests.reliability.fuzz worker ARGS_JSON", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
