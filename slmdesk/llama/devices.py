"""Which compute devices this llama.cpp build offers, for GPU offload and `slmdesk doctor`.

``llama_supports_gpu_offload`` says whether the build has a GPU backend at all (Metal, Vulkan,
CUDA...). The device list, names and memory come from ggml's backend device API
(``ggml_backend_dev_*`` in the ggml library llama-cpp-python ships); llama-cpp-python does not
bind it, so it is called through ctypes, and anything missing reads as "unknown" rather than
failing. On a CPU-only build there is nothing to offload to and the answer says so.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.models.gguf_info import GGUFInfo
from slmdesk.models.hardware import MemoryEstimate, estimate_with_offload

log = logging.getLogger(__name__)
_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}  # enum ggml_backend_dev_type
CPU_ONLY = "CPU only (this build has no GPU backend)"


@dataclass(frozen=True)
class Device:
    """One ggml backend device."""

    name: str
    description: str
    kind: str  # cpu, gpu, igpu, accel or unknown
    free_bytes: int | None  # None: the backend does not say
    total_bytes: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
        }


@dataclass(frozen=True)
class OffloadSupport:
    """Whether layers can be offloaded, and to what."""

    supported: bool
    devices: list[Device] = field(default_factory=list)

    @property
    def gpu(self) -> Device | None:
        """The device layers go to: the first GPU (or integrated GPU / accelerator)."""
        return next((d for d in self.devices if d.kind != "cpu"), None)

    def summary(self) -> str:
        """One line for doctor: the backend and device, or that this build is CPU only."""
        gpu = self.gpu
        if not self.supported or gpu is None:
            return CPU_ONLY if not self.supported else "GPU offload supported; device unknown"
        memory = f"{gpu.total_bytes / 1e9:.1f} GB" if gpu.total_bytes else "memory unknown"
        return f"{gpu.name} ({gpu.description}), {memory}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (doctor's ``gpu`` details)."""
        gpu = self.gpu
        return {
            "offload_supported": self.supported,
            "backend": gpu.name if gpu else ("unknown" if self.supported else "CPU"),
            "device": gpu.description if gpu else None,
            "device_total_bytes": gpu.total_bytes if gpu else None,
            "device_free_bytes": gpu.free_bytes if gpu else None,
            "devices": [d.as_dict() for d in self.devices],
            "summary": self.summary(),
        }


def offload_support() -> OffloadSupport:
    """Ask the loaded llama.cpp whether it offloads, and list its devices."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    supported = bool(llama_cpp.llama_supports_gpu_offload())
    try:
        devices = _devices(_ggml_library(Path(llama_cpp.__file__).parent / "lib"))
    except (OSError, AttributeError) as exc:
        log.info("ggml devices unknown: %s", exc)
        devices = []
    return OffloadSupport(supported, devices)


def gpu_free_bytes() -> int | None:
    """Free memory of the GPU layers would go to; None on a build without GPU offload."""
    support = offload_support()
    gpu = support.gpu if support.supported else None
    return gpu.free_bytes if gpu is not None else None


def estimate_on_this_machine(
    info: GGUFInfo, context_length: int | None = None, gpu_layers: int | None = None
) -> MemoryEstimate:
    """The memory verdict a load would reach here: the offloaded layers in the GPU's memory
    (``gpu_layers``: the model's saved setting; None decides, 0 keeps it on the CPU)."""
    free = gpu_free_bytes() if gpu_layers != 0 else None
    return estimate_with_offload(info, context_length, None, free, gpu_layers)


def _ggml_library(folder: Path) -> ctypes.CDLL:
    names = {"win32": "ggml.dll", "darwin": "libggml.dylib"}
    return ctypes.CDLL(str(folder / names.get(sys.platform, "libggml.so")))


def _devices(lib: ctypes.CDLL) -> list[Device]:
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for fn in (lib.ggml_backend_dev_name, lib.ggml_backend_dev_description):
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    size_p = ctypes.POINTER(ctypes.c_size_t)
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size_p, size_p]
    devices: list[Device] = []
    for index in range(int(lib.ggml_backend_dev_count())):
        dev = lib.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        devices.append(
            Device(
                name=(lib.ggml_backend_dev_name(dev) or b"?").decode("utf-8", "replace"),
                description=(lib.ggml_backend_dev_description(dev) or b"").decode(
                    "utf-8", "replace"
                ),
                kind=_KINDS.get(int(lib.ggml_backend_dev_type(dev)), "unknown"),
                free_bytes=int(free.value) or None,
                total_bytes=int(total.value) or None,
            )
        )
    return devices
