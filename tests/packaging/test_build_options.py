"""``packaging/build.py`` ships a portable llama.cpp unless a native build is asked for by name.

A llama.cpp compiled for the build machine's CPU dies with an illegal instruction on an older
one, so the portable build must be what ``make package`` gives without options.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "build.py"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slmdesk_packaging_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_portable_llama_is_the_default(build: ModuleType) -> None:
    assert build.uses_portable_llama(build.parse_args([])) is True
    assert build.uses_portable_llama(build.parse_args(["--no-deb"])) is True
    assert build.uses_portable_llama(build.parse_args(["--portable-llama"])) is True


def test_native_llama_is_an_explicit_choice(build: ModuleType) -> None:
    assert build.uses_portable_llama(build.parse_args(["--native-llama"])) is False


def test_native_and_portable_exclude_each_other(build: ModuleType) -> None:
    with pytest.raises(SystemExit) as caught:
        build.parse_args(["--native-llama", "--portable-llama"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("system", "machine"), [("linux", "x86_64"), ("win32", "AMD64"), ("linux", "AMD64")]
)
def test_x86_builds_carry_every_cpu_variant(build: ModuleType, system: str, machine: str) -> None:
    flags = build.portable_cmake_args(system, machine).split()
    assert "-DGGML_NATIVE=OFF" in flags
    assert "-DGGML_BACKEND_DL=ON" in flags
    assert "-DGGML_CPU_ALL_VARIANTS=ON" in flags


@pytest.mark.parametrize(("system", "machine"), [("darwin", "arm64"), ("linux", "aarch64")])
def test_other_builds_are_at_least_not_native(build: ModuleType, system: str, machine: str) -> None:
    flags = build.portable_cmake_args(system, machine).split()
    assert "-DGGML_NATIVE=OFF" in flags
    assert not any(flag.startswith("-DGGML_NATIVE=ON") for flag in flags)


def test_this_machine_gets_its_portable_flags(build: ModuleType) -> None:
    import platform

    assert build.portable_cmake_args() == build.portable_cmake_args(
        sys.platform, platform.machine()
    )


# -- GPU backends: the options and the command line they produce (no GPU SDK on this machine) --


def test_metal_is_the_macos_default_and_cpu_elsewhere(build: ModuleType) -> None:
    assert build.default_gpu("darwin") == "metal"
    assert build.default_gpu("linux") == "cpu"
    assert build.default_gpu("win32") == "cpu"


@pytest.mark.parametrize(("system", "machine"), [("linux", "x86_64"), ("win32", "AMD64")])
def test_vulkan_adds_its_backend_to_the_portable_flags(
    build: ModuleType, system: str, machine: str
) -> None:
    flags = build.portable_cmake_args(system, machine, gpu="vulkan").split()
    assert "-DGGML_VULKAN=ON" in flags
    assert "-DGGML_CPU_ALL_VARIANTS=ON" in flags and "-DGGML_NATIVE=OFF" in flags
    assert "-DGGML_VULKAN=ON" not in build.portable_cmake_args(system, machine).split()


def test_metal_flags_on_macos(build: ModuleType) -> None:
    flags = build.portable_cmake_args("darwin", "arm64", gpu="metal").split()
    assert "-DGGML_METAL=ON" in flags and "-DGGML_NATIVE=OFF" in flags


def test_the_vulkan_wheel_command_and_cache(build: ModuleType) -> None:
    cmd, env = build.wheel_build_command("python3", gpu="vulkan")
    assert "-DGGML_VULKAN=ON" in env["CMAKE_ARGS"].split()
    wheels = cmd[cmd.index("-w") + 1]
    assert Path(wheels).parent.name == "portable-llama-vulkan"  # never the CPU wheel's cache
    assert cmd[cmd.index("--no-binary") + 1] == "llama-cpp-python"
    _, cpu_env = build.wheel_build_command("python3")
    assert "VULKAN" not in cpu_env["CMAKE_ARGS"]


def test_vulkan_prerequisites_are_checked_with_a_sentence(
    build: ModuleType, tmp_path: Path
) -> None:
    empty = {"PATH": str(tmp_path)}
    problem = build.gpu_problem("vulkan", "win32", empty)
    assert problem is not None and "Vulkan SDK" in problem and "glslc" in problem
    assert "--gpu vulkan is for Windows and Linux" in build.gpu_problem("vulkan", "darwin", empty)
    assert "only on macOS" in build.gpu_problem("metal", "linux", empty)
    assert build.gpu_problem("cpu", "linux", empty) is None
    # A Vulkan SDK laid out as LunarG installs it is enough.
    sdk = tmp_path / "VulkanSDK"
    (sdk / "include" / "vulkan").mkdir(parents=True)
    (sdk / "include" / "vulkan" / "vulkan.h").write_text("")
    (sdk / "bin").mkdir()
    glslc = sdk / "bin" / "glslc"
    glslc.write_text("#!/bin/sh\n")
    glslc.chmod(0o755)
    assert build.gpu_problem("vulkan", "linux", {"PATH": "", "VULKAN_SDK": str(sdk)}) is None


def test_the_build_refuses_vulkan_without_the_sdk(
    build: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("VULKAN_SDK", raising=False)
    assert build.main(["--gpu", "vulkan", "--no-deb"]) == 2
    assert "needs the Vulkan SDK" in capsys.readouterr().err
