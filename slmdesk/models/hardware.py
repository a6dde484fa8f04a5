"""This machine's memory and cores, and whether a model fits in them.

The estimate is what llama.cpp actually allocates: the weights (memory-mapped, but they are all
touched while generating), the KV cache for the chosen context (f16 keys and values for every
layer; the chat engine keeps full-size caches on sliding-window layers too, which prompt reuse
needs) and a compute/scratch overhead measured on real models (see `COMPUTE_OVERHEAD_BYTES`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import psutil

from slmdesk.models.gguf_info import GGUFInfo

Verdict = Literal["fits", "tight", "too big"]

# Scratch buffers, output logits and allocator slack, measured as process RSS growth minus weights
# and KV cache when loading and chatting with Gemma 3 270M (262k vocabulary): 72 MB at 1,024
# tokens of context and 84 MB at 4,096. A fixed part plus one that grows with the vocabulary.
COMPUTE_OVERHEAD_BYTES = 48 * 1024 * 1024
OVERHEAD_LOGIT_ROWS = 32  # f32 vocabulary-sized rows of scratch
KV_BYTES_PER_VALUE = 2  # f16 cache
DEFAULT_CONTEXT = 4096
# Share of the currently free memory a model may use and still "fit" comfortably.
COMFORT_SHARE = 0.7
# Beyond this share of all memory the model does not fit, even after closing other apps.
TOTAL_SHARE = 0.9


@dataclass(frozen=True)
class MachineInfo:
    """What this computer offers."""

    total_ram: int
    available_ram: int
    physical_cores: int
    logical_cores: int


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory a model needs at a context length, and the verdict for this machine."""

    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    context_length: int
    verdict: Verdict

    @property
    def total_bytes(self) -> int:
        """Everything added up."""
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    def as_dict(self) -> dict[str, int | str]:
        """JSON-ready form."""
        return {
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "context_length": self.context_length,
            "verdict": self.verdict,
        }


def machine_info() -> MachineInfo:
    """Read RAM and cores now (available memory changes as other apps run)."""
    vm = psutil.virtual_memory()
    logical = os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    return MachineInfo(
        total_ram=int(vm.total),
        available_ram=int(vm.available),
        physical_cores=int(physical),
        logical_cores=int(logical),
    )


def verdict_for(total_bytes: int, machine: MachineInfo | None = None) -> Verdict:
    """``fits`` if it leaves room for the rest of the system, ``tight`` if only just, else ``too big``."""
    machine = machine or machine_info()
    if total_bytes <= COMFORT_SHARE * machine.available_ram:
        return "fits"
    if total_bytes <= TOTAL_SHARE * machine.total_ram:
        return "tight"
    return "too big"


def kv_cache_bytes(
    n_layers: int,
    n_head_kv: int,
    key_length: int,
    value_length: int,
    context_length: int,
    sliding_window: int | None = None,
    swa_layers: int = 0,
) -> int:
    """Bytes of f16 KV cache; ``swa_layers`` of the layers only keep ``sliding_window`` tokens."""
    per_token = n_head_kv * (key_length + value_length) * KV_BYTES_PER_VALUE
    full_layers = n_layers - swa_layers
    window = min(sliding_window or context_length, context_length)
    return per_token * (full_layers * context_length + swa_layers * window)


def estimate_memory(
    info: GGUFInfo, context_length: int | None = None, machine: MachineInfo | None = None
) -> MemoryEstimate:
    """Memory needed to chat with ``info`` at ``context_length`` (default: min(model, 4096)).

    Args:
        info: the model's facts.
        context_length: tokens of context; None picks the default.
        machine: the machine to judge against; None reads this one.
    """
    ctx = context_length or min(info.context_length or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
    kv = kv_cache_bytes(
        info.block_count, info.head_count_kv, info.key_length, info.value_length, ctx
    )
    overhead = COMPUTE_OVERHEAD_BYTES + info.vocab_size * 4 * OVERHEAD_LOGIT_ROWS
    weights = info.weights_bytes
    total = weights + kv + overhead
    return MemoryEstimate(weights, kv, overhead, ctx, verdict_for(total, machine))


def max_context_that_fits(info: GGUFInfo, machine: MachineInfo | None = None) -> int:
    """The largest power-of-two context (≤ the model's) whose estimate still ``fits``."""
    machine = machine or machine_info()
    ctx = max(info.context_length, 512)
    while ctx > 512 and estimate_memory(info, ctx, machine).verdict != "fits":
        ctx //= 2
    return ctx
