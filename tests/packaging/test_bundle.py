"""The frozen app and its .deb, built for real with PyInstaller and dpkg-deb (slow: minutes).

The bundle is built once per session from the development environment's llama.cpp
(``--native-llama``: the portable wheel that ``packaging/build.py`` builds by default, the one to
ship, is a much longer compile), then:
the frozen executable prints its version, passes ``doctor`` against a model, runs the optimizer
child (the frozen executable started with its hidden worker argument), and the .deb installs
into a temporary root with ``dpkg -x`` and runs from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux .deb"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb"),
]

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
# The unpacked bundle of this stack is ~230 MB before trimming; the trimmed one must stay below.
MAX_BUNDLE_BYTES = 240 * 1024 * 1024
# Wayland client libraries are Recommends of the .deb: without them Qt falls back to X11.
OPTIONAL_SYSTEM_LIBS = {"libwayland-client.so.0", "libwayland-cursor.so.0", "libwayland-egl.so.1"}


@dataclass
class Built:
    bundle: Path
    deb: Path
    seconds: float


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    pytest.importorskip("PyInstaller")
    out = tmp_path_factory.mktemp("package")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build.py"),
            "--native-llama",
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
            "--deb-compression",
            "none",  # xz takes minutes; bench/startup.py measures the shipped (xz) size
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    debs = sorted((out / "dist").glob("slmdesk_*.deb"))
    assert len(debs) == 1
    yield Built(out / "dist" / "slmdesk", debs[0], time.monotonic() - started)
    shutil.rmtree(out, ignore_errors=True)


def _frozen_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, SLMDESK_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONPATH", None)
    return env


def _run(cmd: list[str], home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=_frozen_env(home), capture_output=True, text=True, timeout=timeout, cwd=home
    )


def _doctor_ok(exe: Path, model: Path, home: Path) -> dict:
    proc = _run([str(exe), "doctor", "--model", str(model), "--json"], home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is True
    assert checks["versions"]["details"]["frozen"] is True
    assert checks["versions"]["details"]["slmdesk"] == VERSION
    assert checks["model"]["details"]["tokens"] == 8
    assert checks["window"]["details"]["svg_icon"] is True
    return checks


def test_frozen_version_and_doctor(built: Built, tiny_model: Path, tmp_path: Path) -> None:
    exe = built.bundle / "slmdesk"
    proc = _run([str(exe), "--version"], tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"slmdesk {VERSION}"
    checks = _doctor_ok(exe, tiny_model, tmp_path)
    resources = Path(checks["versions"]["details"]["resources"])
    assert resources.is_relative_to(built.bundle)
    assert checks["llama.cpp"]["details"]["cpu_backend"]
    print(f"\nbundle build + .deb: {built.seconds:.0f} s")


def test_frozen_optimizer_child_runs(built: Built, tiny_model: Path, tmp_path: Path) -> None:
    exe = built.bundle / "slmdesk"
    proc = _run(
        [str(exe), "optimize", str(tiny_model), "--quant", "Q8_0", "--no-eval", "--json"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listing = _run([str(exe), "models", "list", "--json"], tmp_path)
    names = [m["name"] for m in json.loads(listing.stdout)["models"]]
    assert any("Q8_0" in name for name in names), names


def test_bundle_is_trimmed(built: Built) -> None:
    files = [p for p in built.bundle.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    rel = [str(p.relative_to(built.bundle)) for p in files]
    assert (built.bundle / "_internal" / "resources" / "icons" / "app.svg").is_file()
    assert not any("gemma3_270m" in r for r in rel), "the starter model must not be bundled"
    assert not any(r.startswith("_internal/hf_xet") for r in rel)
    assert not any("translations" in r for r in rel)
    assert not any(
        n.startswith(("libQt6Quick", "libQt6Qml", "libQt6WebEngine", "libQt6Pdf")) for n in names
    )
    assert not any(
        r.startswith(("_internal/pytest", "_internal/_pytest", "_internal/tkinter")) for r in rel
    )
    size = sum(p.stat().st_size for p in files if not p.is_symlink())
    assert size < MAX_BUNDLE_BYTES, f"bundle is {size / 1e6:.0f} MB"


def test_every_bundled_library_resolves(built: Built) -> None:
    """Each shared library in the bundle finds its dependencies (in the bundle or the system)."""
    internal = built.bundle / "_internal"
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
    missing: dict[str, list[str]] = {}
    for lib in sorted(built.bundle.rglob("*.so*")):
        if lib.is_symlink() or not lib.is_file():
            continue
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, env=env).stdout
        lost = [
            line.split()[0]
            for line in out.splitlines()
            if "not found" in line and line.split()[0] not in OPTIONAL_SYSTEM_LIBS
        ]
        if lost:
            missing[str(lib.relative_to(built.bundle))] = lost
    assert not missing, missing


def test_deb_installs_into_a_root_and_runs(built: Built, tiny_model: Path, tmp_path: Path) -> None:
    info = subprocess.run(
        ["dpkg-deb", "--field", str(built.deb), "Package", "Version", "Depends"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Package: slmdesk" in info
    assert f"Version: {VERSION}" in info
    assert "libxcb-cursor0" in info and "libegl1" in info
    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", str(built.deb), str(root)], check=True)
    link = root / "usr" / "bin" / "slmdesk"
    assert link.is_symlink() and os.readlink(link) == "/opt/slmdesk/slmdesk"
    desktop_file = root / "usr" / "share" / "applications" / "slmdesk.desktop"
    desktop = desktop_file.read_text()
    assert "Exec=slmdesk" in desktop and "Icon=slmdesk" in desktop
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop_file)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    for size in (16, 48, 256):
        icon = root / f"usr/share/icons/hicolor/{size}x{size}/apps/slmdesk.png"
        assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exe = root / "opt" / "slmdesk" / "slmdesk"
    home = tmp_path / "home"
    home.mkdir()
    proc = _run([str(exe), "--version"], home)
    assert proc.stdout.strip() == f"slmdesk {VERSION}"
    _doctor_ok(exe, tiny_model, home)
