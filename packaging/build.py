"""Build slmdesk's installers: ``python packaging/build.py [options]`` (``make package``).

Steps:
1. Build a llama-cpp-python wheel with portable CPU code (once; cached under ``build/``) and
   install the app with it into a separate build venv there; the dev venv is never touched.
   ``--native-llama`` skips this and freezes the llama.cpp of ``--python`` as it is: quick, but
   a source install is compiled for the build machine's CPU, so such a package is for local
   testing only.
2. Render the icons from ``resources/icons/app.svg``.
3. Run PyInstaller on ``packaging/slmdesk.spec``: a one-folder bundle in ``<dist>/slmdesk``.
4. On Linux, assemble ``<dist>/slmdesk_<version>_<arch>.deb`` with dpkg-deb.

Portable CPU code: a llama.cpp built with ``GGML_NATIVE`` (the default of a source install) uses
every instruction of the build machine and dies with an illegal instruction on an older CPU. On
x86-64 Linux and Windows the portable wheel is built with ``GGML_BACKEND_DL`` and
``GGML_CPU_ALL_VARIANTS``: one CPU library per CPU generation, and ``llama_backend_init`` (via
``ggml_backend_load_all``) loads the best one this CPU supports from the executable's folder. On
macOS (where ggml has no CPU variants) it is built with ``GGML_NATIVE=OFF`` and Metal.

GPU offload (``--gpu``): Metal is llama.cpp's default on macOS and stays on there (``--gpu
metal``, the default on macOS). ``--gpu vulkan`` on Windows and Linux adds ``GGML_VULKAN=ON``;
it needs the Vulkan SDK (headers, loader and the ``glslc`` shader compiler; ``VULKAN_SDK`` set
by the LunarG installer), checked before anything is compiled. Its wheel is cached apart from
the CPU one. ``--gpu cpu`` (the default elsewhere) builds no GPU backend.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
PORTABLE_DIR = ROOT / "build" / "portable-llama"
LLAMA_VERSION = "0.3.36"
PORTABLE_CMAKE_ARGS = {
    "x86_64": "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAVA_BUILD=OFF",
    "darwin": "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF",
    "other": "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF",
}


GPU_BACKENDS = ("cpu", "vulkan", "metal")
GPU_CMAKE_ARGS = {"cpu": "", "vulkan": "-DGGML_VULKAN=ON", "metal": "-DGGML_METAL=ON"}


def default_gpu(system: str | None = None) -> str:
    """Metal on macOS (llama.cpp's own default there), no GPU backend elsewhere."""
    return "metal" if (sys.platform if system is None else system) == "darwin" else "cpu"


def gpu_problem(
    gpu: str, system: str | None = None, env: dict[str, str] | None = None
) -> str | None:
    """Why this machine cannot build llama.cpp with ``gpu`` (None: it can).

    Args:
        gpu: ``cpu``, ``vulkan`` or ``metal``.
        system: ``sys.platform`` of the build (default: this one).
        env: the environment (default: this process's).
    """
    system = sys.platform if system is None else system
    env = dict(os.environ) if env is None else env
    if gpu == "metal" and system != "darwin":
        return "--gpu metal builds only on macOS; use --gpu vulkan on Windows and Linux."
    if gpu == "vulkan":
        if system == "darwin":
            return "--gpu vulkan is for Windows and Linux; macOS builds use Metal (--gpu metal)."
        sdk = env.get("VULKAN_SDK", "")
        glslc = shutil.which("glslc", path=env.get("PATH")) or (
            sdk and shutil.which("glslc", path=str(Path(sdk) / "bin"))
        )
        headers = (sdk and (Path(sdk) / "include" / "vulkan" / "vulkan.h").is_file()) or (
            system.startswith("linux") and Path("/usr/include/vulkan/vulkan.h").is_file()
        )
        if not glslc or not headers:
            missing = " and ".join(
                name
                for name, found in (
                    ("the glslc shader compiler", glslc),
                    ("Vulkan headers", headers),
                )
                if not found
            )
            return (
                f"--gpu vulkan needs the Vulkan SDK, and {missing} cannot be found: install the "
                "LunarG Vulkan SDK (it sets VULKAN_SDK), or on Debian/Ubuntu the packages "
                "libvulkan-dev and glslc."
            )
    return None


def project_version() -> str:
    """The version in pyproject.toml (the one source of truth)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def portable_cmake_args(
    system: str | None = None, machine: str | None = None, gpu: str = "cpu"
) -> str:
    """CMake flags for a llama.cpp that runs on any CPU of this architecture.

    Args:
        system: ``sys.platform`` of the build (default: this one).
        machine: ``platform.machine()`` of the build (default: this one).
        gpu: the GPU backend to add (`GPU_BACKENDS`); ``cpu`` adds none.
    """
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    if system == "darwin":
        base = PORTABLE_CMAKE_ARGS["darwin"]
    elif machine.lower() in ("x86_64", "amd64"):
        base = PORTABLE_CMAKE_ARGS["x86_64"]
    else:
        base = PORTABLE_CMAKE_ARGS["other"]
    return " ".join(part for part in (base, GPU_CMAKE_ARGS[gpu]) if part)


def portable_dir(gpu: str = "cpu") -> Path:
    """Where the wheel and build venv of a backend live (a GPU build never reuses the CPU one)."""
    return (
        PORTABLE_DIR if gpu in ("cpu", "metal") else PORTABLE_DIR.with_name(f"portable-llama-{gpu}")
    )


def wheel_build_command(base_python: str, gpu: str = "cpu") -> tuple[list[str], dict[str, str]]:
    """The pip command compiling the portable wheel, and the environment it runs with."""
    folder = portable_dir(gpu)
    env = dict(os.environ)
    env["CMAKE_ARGS"] = portable_cmake_args(gpu=gpu)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    sdists = sorted(PORTABLE_DIR.glob(f"llama_cpp_python-{LLAMA_VERSION}.tar.gz"))
    source = str(sdists[-1]) if sdists else f"llama-cpp-python=={LLAMA_VERSION}"
    cmd = [base_python, "-m", "pip", "wheel", "--no-deps", "--no-binary", "llama-cpp-python"]
    cmd += ["-w", str(folder / "wheels"), source]
    if sys.platform != "win32" and shutil.which("nice"):
        cmd = ["nice", "-n", "19", *cmd]
    return cmd, env


def build_portable_wheel(base_python: str, gpu: str = "cpu") -> Path:
    """Compile the portable llama-cpp-python wheel once (cached in build/portable-llama/wheels).

    The compile runs at the lowest CPU priority: it takes 15-30 minutes on two cores.
    """
    wheels = portable_dir(gpu) / "wheels"
    found = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_VERSION}-*.whl"))
    if found:
        return found[-1]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd, env = wheel_build_command(base_python, gpu)
    started = time.monotonic()
    _run(cmd, env=env)
    print(f"portable wheel built in {time.monotonic() - started:.0f} s", flush=True)
    return sorted(wheels.glob(f"llama_cpp_python-{LLAMA_VERSION}-*.whl"))[-1]


def portable_venv(base_python: str, gpu: str = "cpu") -> Path:
    """A build venv with slmdesk, PyInstaller and the portable llama.cpp; returns its python."""
    wheel = build_portable_wheel(base_python, gpu)
    venv = portable_dir(gpu) / "venv"
    python = _venv_python(venv)
    if not python.exists():
        _run([base_python, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel), f"{ROOT}[package]"])
    gather_backend_libraries(python)
    return python


def gather_backend_libraries(python: Path) -> None:
    """Put the ggml CPU-variant libraries in llama_cpp/lib, where the spec collects them.

    llama-cpp-python's install rules only name the plain ggml targets; the CPU variants are
    installed by ggml's own rules into the wheel's ``bin``/``lib`` folder instead.
    """
    code = (
        "import llama_cpp, pathlib, sysconfig;"
        "print(pathlib.Path(llama_cpp.__file__).parent / 'lib');"
        "print(sysconfig.get_paths()['purelib'])"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True)
    lib_dir, purelib = (Path(line) for line in out.stdout.splitlines()[:2])
    pattern = "ggml-cpu-*.dll" if sys.platform == "win32" else "libggml-cpu-*.so"
    gpu_pattern = "ggml-vulkan*.dll" if sys.platform == "win32" else "libggml-vulkan*.so"
    moved = 0
    found = [*Path(purelib).rglob(pattern), *Path(purelib).rglob(gpu_pattern)]
    for candidate in found:
        if candidate.parent != lib_dir:
            shutil.copy2(candidate, lib_dir / candidate.name)
            moved += 1
    variants = sorted(p.name for p in lib_dir.glob(pattern))
    print(f"CPU variants in the bundle ({len(variants)}): {', '.join(variants) or 'none'}")


def build_icons(python: str, out: Path) -> None:
    """Render the PNG/ICO/ICNS icons (with Qt, offscreen)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    _run([python, str(PACKAGING / "icons.py"), str(out)], env=env)


def build_bundle(python: str, dist: Path, work: Path, icons: Path) -> Path:
    """Run PyInstaller; returns the bundle folder."""
    env = dict(os.environ, SLMDESK_ICON_DIR=str(icons))
    _run(
        [
            python,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(dist),
            "--workpath",
            str(work / "pyinstaller"),
            str(PACKAGING / "slmdesk.spec"),
        ],
        env=env,
    )
    return dist / "slmdesk"


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The build's options. The portable llama.cpp is the default: it is the one safe to ship."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    llama = parser.add_mutually_exclusive_group()
    llama.add_argument(
        "--native-llama",
        action="store_true",
        help=(
            "freeze the llama.cpp installed with --python as it is (fast; usually built for "
            "this CPU only, so the package may crash on older computers: local testing only)"
        ),
    )
    llama.add_argument(
        "--portable-llama",
        action="store_true",
        help="the default: compile llama.cpp with portable CPU code into a build venv (slow, once)",
    )
    parser.add_argument(
        "--gpu",
        choices=GPU_BACKENDS,
        default=default_gpu(),
        help=(
            "GPU backend compiled into llama.cpp: metal (macOS, its default), vulkan (Windows "
            "and Linux; needs the Vulkan SDK), cpu (none; the default on Windows and Linux)"
        ),
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with slmdesk")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="scratch folder")
    parser.add_argument("--no-deb", action="store_true", help="skip the .deb (Linux)")
    parser.add_argument(
        "--deb-compression",
        choices=("xz", "gzip", "zstd", "none"),
        default="xz",
        help="compression of the .deb (default xz, the smallest; none is fast for tests)",
    )
    return parser.parse_args(argv)


def uses_portable_llama(args: argparse.Namespace) -> bool:
    """Whether this build compiles and bundles the portable llama.cpp (every build but native)."""
    return not args.native_llama


def main(argv: list[str] | None = None) -> int:
    """Build the bundle (and the .deb on Linux); prints sizes and times."""
    args = parse_args(argv)
    started = time.monotonic()
    if args.native_llama and args.gpu != default_gpu():
        print("error: --gpu needs the portable build (it compiles llama.cpp)", file=sys.stderr)
        return 2
    problem = gpu_problem(args.gpu)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if uses_portable_llama(args):
        python = str(portable_venv(args.python, args.gpu))
    else:
        print(
            f"warning: --native-llama freezes the llama.cpp of {args.python} as it is; it may run "
            "only on CPUs like this one: do not ship this package",
            flush=True,
        )
        python = args.python
    icons = args.work / "icons"
    build_icons(python, icons)
    t0 = time.monotonic()
    bundle = build_bundle(python, args.dist, args.work, icons)
    print(f"bundle: {bundle} ({_tree_bytes(bundle) / 1e6:.0f} MB) in {time.monotonic() - t0:.0f} s")
    if sys.platform.startswith("linux") and not args.no_deb:
        sys.path.insert(0, str(PACKAGING))
        from deb import build_deb

        t0 = time.monotonic()
        deb = build_deb(
            bundle, icons, args.dist, project_version(), args.work, args.deb_compression
        )
        print(f"deb: {deb} ({deb.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.0f} s")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
