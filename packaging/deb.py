"""Assemble the Linux ``.deb`` from the PyInstaller bundle with ``dpkg-deb``.

Layout installed:
- ``/opt/slmdesk/``: the one-folder bundle (executable ``/opt/slmdesk/slmdesk``);
- ``/usr/bin/slmdesk``: a symlink to it, so ``slmdesk`` works in a terminal;
- ``/usr/share/applications/slmdesk.desktop``: the menu entry;
- ``/usr/share/icons/hicolor/<n>x<n>/apps/slmdesk.png``: its icons.

The bundle carries Python, Qt and llama.cpp; what it expects from the system (Qt's X11/Wayland,
EGL and font libraries, OpenMP) is declared in ``Depends`` so apt installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESKTOP_FILE = ROOT / "resources" / "slmdesk.desktop"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# System libraries Qt's xcb/wayland plugins and llama.cpp load but the bundle does not carry.
# "a | b" pairs cover the 64-bit time_t renames of Debian 13 / Ubuntu 24.04.
DEPENDS = (
    "libc6 (>= 2.31)",
    "libgomp1",
    "libegl1",
    "libgl1",
    "libopengl0",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    "libglib2.0-0t64 | libglib2.0-0",
    "libx11-6",
    "libx11-xcb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxcb-util1",
)
RECOMMENDS = ("libwayland-client0", "libwayland-cursor0", "libwayland-egl1")
DESCRIPTION = """\
Find, shrink and chat with small language models, offline
 slmdesk finds small GGUF language models on the Hugging Face Hub, downloads them
 with resume and verification, makes them smaller (layer pruning and quantization
 with a measured quality report) and lets you chat with them on this computer,
 without a network connection. Models are not included."""

POSTINST = """\
#!/bin/sh
set -e
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q /usr/share/applications || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
exit 0
"""


def debian_arch() -> str:
    """The Debian architecture name of this machine (``amd64``, ``arm64``...)."""
    return subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _tree_size_kib(path: Path) -> int:
    total = 0
    for entry in path.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            total += entry.stat().st_size
    return (total + 1023) // 1024


def control_text(version: str, arch: str, installed_kib: int) -> str:
    """The ``DEBIAN/control`` file."""
    return (
        f"Package: slmdesk\n"
        f"Version: {version}\n"
        f"Section: utils\n"
        f"Priority: optional\n"
        f"Architecture: {arch}\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        f"Recommends: {', '.join(RECOMMENDS)}\n"
        f"Maintainer: slmdesk maintainers <slmdesk@users.noreply.github.com>\n"
        f"Description: {DESCRIPTION}\n"
    )


def build_deb(
    bundle: Path, icons: Path, out_dir: Path, version: str, work: Path, compression: str = "xz"
) -> Path:
    """Stage the package tree under ``work`` and build ``slmdesk_<version>_<arch>.deb``.

    Args:
        bundle: the PyInstaller one-folder bundle (``dist/slmdesk``).
        icons: folder with ``slmdesk-<size>.png`` (from ``packaging/icons.py``).
        out_dir: where the .deb is written.
        version: the package version (from pyproject.toml).
        work: scratch folder for the staged tree (emptied first).
        compression: dpkg-deb's ``-Z`` type: ``xz`` (smallest, the default), ``gzip``,
            ``zstd`` or ``none`` (fast, for tests).
    """
    arch = debian_arch()
    root = work / "deb-root"
    if root.exists():
        shutil.rmtree(root)
    opt = root / "opt" / "slmdesk"
    shutil.copytree(bundle, opt, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    os.symlink("/opt/slmdesk/slmdesk", root / "usr" / "bin" / "slmdesk")
    apps = root / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copyfile(DESKTOP_FILE, apps / "slmdesk.desktop")
    for size in ICON_SIZES:
        dest = root / "usr" / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        dest.mkdir(parents=True)
        shutil.copyfile(icons / f"slmdesk-{size}.png", dest / "slmdesk.png")
    for folder in [root, *root.rglob("*")]:
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)
        elif folder.is_file() and not folder.is_symlink():
            executable = folder.stat().st_mode & 0o111
            folder.chmod(0o755 if executable else 0o644)
    debian = root / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(
        control_text(version, arch, _tree_size_kib(root)), encoding="utf-8"
    )
    for script in ("postinst", "postrm"):
        path = debian / script
        path.write_text(POSTINST, encoding="utf-8")
        path.chmod(0o755)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"slmdesk_{version}_{arch}.deb"
    tmp = target.with_name(f".{target.name}.tmp")
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(tmp)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tmp.replace(target)
    return target
