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
