"""``slmdesk doctor``: real checks on this machine, real child processes, real llama.cpp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slmdesk.cli import main
from slmdesk.diagnostics import doctor
from slmdesk.llama.native import cpu_variant_name


def test_doctor_json_passes_and_generates_tokens(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--model", str(tiny_model), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["ok"] is True
    checks = {c["name"]: c for c in out["checks"]}
    assert set(checks) == {"versions", "paths", "disk and memory", "window", "llama.cpp", "model"}
    assert checks["versions"]["details"]["llama-cpp-python"] == "0.3.36"
    assert Path(checks["versions"]["details"]["resources"], "icons", "app.svg").is_file()
    assert checks["model"]["details"]["tokens"] == doctor.GENERATE_TOKENS
    assert checks["model"]["details"]["path"] == str(tiny_model)
    runtime = checks["llama.cpp"]["details"]
    assert "CPU" in runtime["system_info"]
    assert runtime["cpu_variant"] and runtime["cpu_variant"] != "unknown"
    assert checks["window"]["details"]["svg_icon"] is True
    assert checks["window"]["details"]["platform"] == "offscreen"


def test_doctor_text_report_with_synthesized_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all checks passed" in out
    assert "a synthesized tiny model" in out
    assert "generated 8 tokens" in out
    assert "CPU variant:" in out


def test_doctor_fails_on_a_file_that_is_not_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_bytes(b"GGUF but not really" * 100)
    code = main(["doctor", "--model", str(bogus), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["llama.cpp"]["ok"] is True  # the library itself is fine
    assert checks["model"]["ok"] is False
    assert "notes.gguf" in checks["model"]["summary"]


def test_doctor_missing_model_is_one_failed_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--model", str(tmp_path / "absent.gguf")])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL model" in captured.out
    assert "is not a file" in captured.out
    assert "Traceback" not in captured.out + captured.err


def test_unwritable_home_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SLMDESK_HOME", str(blocker / "home"))
    paths_check = doctor.check_paths()
    disk_check = doctor.check_disk_and_memory()
    assert not paths_check.ok
    assert "cannot write" in paths_check.summary
    assert not disk_check.ok


def test_window_check_reports_a_qt_that_cannot_start() -> None:
    check = doctor.check_window(platform_name="no-such-platform")
    assert not check.ok
    assert check.summary.startswith("Qt could not open a window")
    assert "SIGABRT" in check.summary or "code" in check.summary


def test_probe_that_dies_of_sigill_is_explained() -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX signals")
    command = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    answer, reason = doctor.run_probe(command, timeout=60)
    assert answer is None
    assert "illegal instruction" in reason


def test_probe_timeout_is_reported() -> None:
    answer, reason = doctor.run_probe([sys.executable, "-c", "import time; time.sleep(30)"], 1)
    assert answer is None
    assert "did not finish within 1 s" in reason


@pytest.mark.parametrize(
    ("path", "variant"),
    [
        ("/opt/slmdesk/libggml-cpu-haswell.so", "haswell"),
        ("C:\\slmdesk\\ggml-cpu-sandybridge.dll", "sandybridge"),
        ("/x/llama_cpp/lib/libggml-cpu.so.0.25.3", "single build (not portable)"),
        (None, "unknown"),
    ],
)
def test_cpu_variant_names(path: str | None, variant: str) -> None:
    if path and "\\" in path:
        path = path.replace("\\", "/")
    assert cpu_variant_name(path) == variant


def test_frozen_children_are_the_executable_with_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor.child_command("m", "--f", "a")[1:] == ["-m", "m", "--f", "a"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert doctor.child_command("m", "--f", "a") == [sys.executable, "--f", "a"]


def test_no_display_check_when_qt_is_forced_offscreen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("DISPLAY", ":0")
    assert doctor.check_display() is None


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_display_check_opens_a_window_on_x11(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            display = ":" + pipe.readline().strip()  # Xvfb writes it once it is ready
        monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        monkeypatch.setenv("DISPLAY", display)
        check = doctor.check_display()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert check is not None
    assert check.ok, check.summary
    assert check.details["platform"] == "xcb"
