"""Self-check of an installation: can this copy of slmdesk run on this computer?

Used by ``slmdesk doctor`` (people send its report when something is wrong) and by the packaging
tests, which run it inside the frozen bundle. Each check returns a `Check`; the report passes only
when every check passes.

The risky checks run in child processes so that a failure is reported instead of taking the
doctor down: llama.cpp built for the wrong CPU dies of an illegal instruction, and a missing Qt
library aborts the process. From source the child is ``python -m <module> <flag> ...``; in a
frozen app ``-m`` does not exist, so the executable itself answers to the flag (see
`child_command` and ``packaging/slmdesk_entry.py``).

The llama.cpp child (`llama_probe`) also reports which CPU variant of llama.cpp was picked: a
portable build ships one ``ggml-cpu-<variant>`` library per CPU generation and ggml loads the
best one this CPU can run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.llama.native import generate_tokens, llama_runtime

LLAMA_PROBE_FLAG = "--slmdesk-doctor-llama"
QT_PROBE_FLAG = "--slmdesk-doctor-qt"
LLAMA_PROBE_MODULE = "slmdesk.diagnostics.doctor"
QT_PROBE_MODULE = "slmdesk.ui.qt_probe"
# Tokens the model check must generate.
# Tokens the model check must generate.
GENERATE_TOKENS = 8
# Below these the app cannot do useful work: a small model needs a few hundred MB of each.
MIN_FREE_DISK_BYTES = 512 * 1024 * 1024
MIN_AVAILABLE_RAM_BYTES = 512 * 1024 * 1024
LLAMA_TIMEOUT_S = 300.0
QT_TIMEOUT_S = 60.0
# CPU flags worth showing: the ones llama.cpp's CPU variants are chosen by.
_CPU_FLAGS = (
    "sse4_2",
    "avx",
    "f16c",
    "fma",
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
)
_DISTRIBUTIONS = {
    "slmdesk": ("slmdesk",),
    "PySide6": ("PySide6-Essentials", "PySide6"),
    "llama-cpp-python": ("llama_cpp_python", "llama-cpp-python"),
    "gguf": ("gguf",),
    "huggingface_hub": ("huggingface_hub", "huggingface-hub"),
    "numpy": ("numpy",),
}
_MODULE_VERSIONS = {
    "PySide6": "PySide6",
    "llama-cpp-python": "llama_cpp",
    "gguf": "gguf",
    "huggingface_hub": "huggingface_hub",
    "numpy": "numpy",
}


@dataclass
class Check:
    """One line of the report: what was checked, whether it passed, and the facts found."""

    name: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """All checks; ``ok`` only when every one passed."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``--json`` output)."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def is_frozen() -> bool:
    """Whether this is a bundled app (PyInstaller) rather than Python running the source."""
    return bool(getattr(sys, "frozen", False))


def child_command(module: str, flag: str, *args: str) -> list[str]:
    """The argv that runs a doctor probe in a child, from source and in a frozen app."""
    if is_frozen():
        return [sys.executable, flag, *args]
    return [sys.executable, "-m", module, flag, *args]


# -- versions and the machine ---------------------------------------------------------------------


def _version_of(label: str) -> str | None:
    for dist in _DISTRIBUTIONS.get(label, (label,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    module = _MODULE_VERSIONS.get(label)
    if module:  # a frozen app may lack package metadata; the module usually knows its version
        try:
            mod = __import__(module)
        except Exception:
            return None
        value = getattr(mod, "__version__", None)
        return str(value) if value else None
    return None


def check_versions() -> Check:
    """Versions of slmdesk, Python and the libraries it runs on."""
    from slmdesk import __version__

    found: dict[str, Any] = {
        "slmdesk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "frozen": is_frozen(),
    }
    missing = []
    for label in ("PySide6", "llama-cpp-python", "gguf", "huggingface_hub", "numpy"):
        value = _version_of(label)
        found[label] = value
        if value is None:
            missing.append(label)
    if missing:
        return Check("versions", False, f"missing: {', '.join(missing)}", found)
    summary = (
        f"slmdesk {__version__}, Python {found['python']}, PySide6 {found['PySide6']}, "
        f"llama-cpp-python {found['llama-cpp-python']}, gguf {found['gguf']}, "
        f"huggingface_hub {found['huggingface_hub']}"
    )
    return Check("versions", True, summary, found)


def cpu_flags() -> list[str]:
    """The vector-instruction flags of this CPU that decide llama.cpp's variant (Linux only)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in _CPU_FLAGS if f in have]
    return []


def check_paths() -> Check:
    """Every folder slmdesk writes to exists and takes a file."""
    results: dict[str, Any] = {}
    bad = []
    getters: dict[str, Callable[[], Path]] = {
        "data": paths.data_dir,
        "models": paths.models_dir,
        "config": paths.config_dir,
        "cache": paths.cache_dir,
        "logs": paths.logs_dir,
    }
    for name, getter in getters.items():
        try:
            folder = getter()
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-", delete=True) as fh:
                fh.write(b"ok")
                fh.flush()
            results[name] = {"path": str(folder), "writable": True}
        except OSError as exc:
            results[name] = {"path": str(getattr(exc, "filename", "") or ""), "writable": False}
            bad.append(f"{name} ({exc.strerror or exc})")
    if bad:
        return Check("paths", False, f"cannot write: {'; '.join(bad)}", results)
    return Check("paths", True, f"all writable under {results['data']['path']}", results)


def check_resources() -> dict[str, Any]:
    """Where the app's resources are (frozen: inside the bundle)."""
    from slmdesk.common.resources import resources_dir

    return {"resources": str(resources_dir())}


def check_disk_and_memory() -> Check:
    """Free disk where models go, and memory for a model."""
    from slmdesk.models.hardware import machine_info

    machine = machine_info()
    try:
        models = paths.models_dir()
        free = shutil.disk_usage(models).free
    except OSError as exc:
        return Check("disk and memory", False, f"cannot measure free disk: {exc}", {})
    details = {
        "models_dir": str(models),
        "free_disk_bytes": free,
        "total_ram_bytes": machine.total_ram,
        "available_ram_bytes": machine.available_ram,
        "physical_cores": machine.physical_cores,
        "logical_cores": machine.logical_cores,
        "cpu_flags": cpu_flags(),
        "cpu": platform.processor() or platform.machine(),
    }
    problems = []
    if free < MIN_FREE_DISK_BYTES:
        problems.append(f"only {free / 1e6:.0f} MB free on the models disk")
    if machine.available_ram < MIN_AVAILABLE_RAM_BYTES:
        problems.append(f"only {machine.available_ram / 1e6:.0f} MB of memory available")
    summary = (
        f"{free / 1e9:.1f} GB free disk, {machine.available_ram / 1e9:.1f} of "
        f"{machine.total_ram / 1e9:.1f} GB RAM available, {machine.physical_cores} cores"
    )
    if problems:
        return Check("disk and memory", False, "; ".join(problems), details)
    return Check("disk and memory", True, summary, details)


# -- child processes ------------------------------------------------------------------------------


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGILL":
            return (
                "died of an illegal instruction (SIGILL): this llama.cpp build uses CPU "
                "instructions this computer does not have"
            )
        return f"was killed by {name}"
    return f"exited with code {code}"


def run_probe(
    command: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """Run a probe child; returns (its JSON answer or None, a reason when None)."""
    try:
        proc = subprocess.run(
            list(command),
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {timeout:.0f} s"
    except OSError as exc:
        return None, f"could not start ({exc.strerror or exc})"
    answer = None
    for line in reversed(proc.stdout.decode("utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            break
    if answer is not None and proc.returncode == 0:
        return answer, ""
    err = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
    last = next((ln.strip() for ln in reversed(err) if ln.strip()), "")
    reason = _describe_exit(proc.returncode)
    if answer is not None and answer.get("error"):
        reason = str(answer["error"])
    elif last:
        reason += f": {last[:300]}"
    return None, reason


def check_window(command: Sequence[str] | None = None, platform_name: str = "offscreen") -> Check:
    """Open a Qt window in a child, so a missing Qt library is a report, not a crash.

    Args:
        command: the probe's argv; the default runs ``slmdesk.ui.qt_probe``.
        platform_name: the Qt platform plugin to use (offscreen needs no display).
    """
    argv = list(command) if command else child_command(QT_PROBE_MODULE, QT_PROBE_FLAG)
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = platform_name
    answer, reason = run_probe(argv, QT_TIMEOUT_S, env)
    if answer is None:
        return Check("window", False, f"Qt could not open a window: {reason}", {})
    ok = bool(answer.get("window_shown")) and bool(answer.get("svg_icon"))
    summary = (
        f"Qt {answer.get('qt')} opened a window on '{answer.get('platform')}'"
        if ok
        else "Qt started but "
        + ("the window did not show" if not answer.get("window_shown") else "SVG icons fail")
    )
    return Check("window", ok, summary, answer)


def native_display_available() -> bool:
    """Whether a real display can be tried: a desktop session, and Qt not forced offscreen."""
    forced = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if forced in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def check_display(command: Sequence[str] | None = None) -> Check | None:
    """Open a window on the real display, the way the app will (None when there is none).

    This is what fails when a system library of Qt's X11 plugin is missing (the classic
    ``libxcb-cursor0``), which the offscreen check cannot see.
    """
    if not native_display_available():
        return None
    argv = list(command) if command else child_command(QT_PROBE_MODULE, QT_PROBE_FLAG)
    answer, reason = run_probe(argv, QT_TIMEOUT_S, dict(os.environ))
    if answer is None:
        return Check("display", False, f"Qt cannot open a window on this display: {reason}", {})
    ok = bool(answer.get("window_shown"))
    summary = f"opened a window on '{answer.get('platform')}'" if ok else "the window did not show"
    return Check("display", ok, summary, answer)


def check_llama(model: Path | None = None) -> list[Check]:
    """Load llama.cpp and a model in a child and generate `GENERATE_TOKENS` tokens.

    Args:
        model: the GGUF to try; None synthesizes a tiny model in a temporary folder.

    Returns:
        Two checks: ``llama.cpp`` (the library and its CPU variant) and ``model``.
    """
    with tempfile.TemporaryDirectory(prefix="slmdesk-doctor-") as tmp:
        if model is None:
            from slmdesk.models.synth import write_tiny_llama

            target = write_tiny_llama(Path(tmp) / "doctor-tiny.gguf")
            label = "a synthesized tiny model"
        else:
            target = Path(model).expanduser()
            label = target.name
            if not target.is_file():
                return [
                    Check("llama.cpp", False, "not tried: no model to load", {}),
                    Check("model", False, f"{target} is not a file", {"path": str(target)}),
                ]
        command = child_command(LLAMA_PROBE_MODULE, LLAMA_PROBE_FLAG, str(target))
        answer, reason = run_probe(command, LLAMA_TIMEOUT_S)
    if answer is None or "llama_cpp" not in answer:
        return [
            Check("llama.cpp", False, f"llama.cpp failed: {reason}", {}),
            Check("model", False, "not tried", {}),
        ]
    lib = {k: answer[k] for k in ("llama_cpp", "cpu_variant", "cpu_backend", "system_info")}
    gpu = answer.get("gpu") or {"summary": "unknown"}
    lib["gpu"] = gpu
    lib_check = Check(
        "llama.cpp",
        True,
        f"llama-cpp-python {answer['llama_cpp']}, CPU variant: {answer['cpu_variant']}, "
        f"GPU: {gpu.get('summary', 'unknown')}",
        lib,
    )
    gen = answer.get("generate") or {}
    if gen.get("error"):
        return [lib_check, Check("model", False, f"{label}: {gen['error']}", gen)]
    tokens = int(gen.get("tokens", 0))
    ok = tokens >= GENERATE_TOKENS
    summary = (
        f"{label}: loaded in {gen.get('load_seconds', 0):.2f} s, generated {tokens} tokens "
        f"at {gen.get('tokens_per_second', 0):.1f} tokens/s"
    )
    return [lib_check, Check("model", ok, summary, gen)]


def run_doctor(model: Path | None = None, window_command: Sequence[str] | None = None) -> Report:
    """Run every check and return the report (never raises for a failed check)."""
    checks = [check_versions(), check_paths(), check_disk_and_memory()]
    try:
        checks[0].details.update(check_resources())
    except Exception as exc:  # a missing resources folder is a broken install
        checks[0] = Check("versions", False, str(exc), checks[0].details)
    checks.append(check_window(window_command))
    display = check_display(window_command)
    if display is not None:
        checks.append(display)
    checks.extend(check_llama(model))
    return Report(checks)


# -- the llama.cpp probe (runs in the child) ------------------------------------------------------


def llama_probe(model: str) -> int:
    """Child entry: print one JSON line with the runtime facts and the generation result."""
    try:
        answer: dict[str, Any] = llama_runtime()
    except Exception as exc:
        print(json.dumps({"error": f"cannot load llama.cpp: {type(exc).__name__}: {exc}"}))
        return 1
    try:
        from slmdesk.llama.devices import offload_support

        answer["gpu"] = offload_support().as_dict()
    except Exception as exc:
        answer["gpu"] = {"summary": f"unknown ({type(exc).__name__})"}
    try:
        answer["generate"] = generate_tokens(Path(model), GENERATE_TOKENS)
    except Exception as exc:
        answer["generate"] = {"error": f"{type(exc).__name__}: {exc}", "path": model}
    print(json.dumps(answer), flush=True)
    return 0


def frozen_dispatch(argv: Sequence[str] | None = None) -> None:
    """In a frozen app: if started as the llama.cpp probe child, run it and exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [LLAMA_PROBE_FLAG] and len(args) == 2:
        sys.exit(llama_probe(args[1]))


if __name__ == "__main__":
    frozen_dispatch()
    sys.exit(2)
