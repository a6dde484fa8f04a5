"""This machine's memory and cores, and whether a model fits in them.

The estimate is what llama.cpp actually allocates: the weights (memory-mapped, but they are all
touched while generating), the KV cache for the chosen context (f16 keys and values for every
layer; the chat engine keeps full-size caches on sliding-window layers too, which prompt reuse
needs) and a compute/scratch overhead measured on real models (see `COMPUTE_OVERHEAD_BYTES`).

There is one formula (`estimate_for`) behind every figure slmdesk shows: the Library and
``slmdesk inspect`` feed it a local file's header, Discover and the welcome screen the header of
a file on the Hub, and when only a file's size is known the same formula runs on typical values
for the facts the header would have given (`ModelShape.typical`).
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
# llama.cpp also keeps about 4 bytes per position of the model's *trained* context once it decodes
# (measured: 2^26 positions add 259 MB to a tiny model, 2^31 add 8.6 GB), whatever context it runs.
TRAINED_CONTEXT_BYTES_PER_TOKEN = 4
DEFAULT_CONTEXT = 4096
# No context length above this is ever used or estimated (llama.cpp's own limit is far lower in
# practice; a damaged file can claim up to 2^64).
MAX_CONTEXT = 1 << 24
# Share of the currently free memory a model may use and still "fit" comfortably.
COMFORT_SHARE = 0.7
# Beyond this share of all memory the model does not fit, even after closing other apps.
TOTAL_SHARE = 0.9
# When only the file size is known: the f16 KV cache at DEFAULT_CONTEXT tokens as a share of the
# weights (12% for Qwen2.5 0.5B, 17% for Llama 3.2 1B, 31% for Gemma 3 270M) and a vocabulary
# of the usual size (128k-152k tokens for Llama 3 and Qwen; Gemma has 262k).
TYPICAL_KV_SHARE = 0.15
TYPICAL_VOCAB = 150_000


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
    gpu_layers: int = 0  # layers offloaded to a GPU (0: all on the CPU)
    device_bytes: int = 0  # the part of the total held in the GPU's memory

    @property
    def total_bytes(self) -> int:
        """Everything added up."""
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    @property
    def ram_bytes(self) -> int:
        """The part held in the computer's memory (the verdict judges this part)."""
        return self.total_bytes - self.device_bytes

    def as_dict(self) -> dict[str, int | str]:
        """JSON-ready form."""
        return {
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "context_length": self.context_length,
            "verdict": self.verdict,
            "gpu_layers": self.gpu_layers,
            "device_bytes": self.device_bytes,
            "ram_bytes": self.ram_bytes,
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


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a model besides the size of its weights.

    Every quantization of one model has the same shape, so the header of one file of a Hub
    repository gives the estimate for all of them.
    """

    n_layers: int
    n_head_kv: int
    key_length: int
    value_length: int
    vocab_size: int
    context_length: int  # the longest context the model was trained for (0: unknown)
    kv_share: float | None = None  # KV cache per weight byte at DEFAULT_CONTEXT, for `typical`

    @classmethod
    def of(cls, info: GGUFInfo) -> ModelShape:
        """The shape read from a GGUF header."""
        return cls(
            n_layers=info.block_count,
            n_head_kv=info.head_count_kv,
            key_length=info.key_length,
            value_length=info.value_length,
            vocab_size=info.vocab_size,
            context_length=info.context_length,
        )

    @classmethod
    def typical(cls) -> ModelShape:
        """The shape assumed for a model known only by its file size."""
        return cls(0, 0, 0, 0, TYPICAL_VOCAB, 0, kv_share=TYPICAL_KV_SHARE)

    def kv_bytes(self, weights_bytes: int, context_length: int) -> int:
        """The KV cache at ``context_length`` tokens."""
        if self.kv_share is not None:
            return int(weights_bytes * self.kv_share * context_length / DEFAULT_CONTEXT)
        return kv_cache_bytes(
            self.n_layers, self.n_head_kv, self.key_length, self.value_length, context_length
        )


def estimate_for(
    weights_bytes: int,
    shape: ModelShape,
    context_length: int | None = None,
    machine: MachineInfo | None = None,
) -> MemoryEstimate:
    """The memory formula: weights + KV cache at the context + compute overhead.

    Args:
        weights_bytes: bytes of tensor data.
        shape: the model's layers, heads and vocabulary (`ModelShape.of` a header, or
            `ModelShape.typical` when only the file size is known).
        context_length: tokens of context; None picks min(the model's, `DEFAULT_CONTEXT`).
        machine: the machine to judge against; None reads this one.
    """
    ctx = context_length or min(shape.context_length or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
    ctx = min(max(ctx, 1), MAX_CONTEXT)
    kv = shape.kv_bytes(weights_bytes, ctx)
    overhead = _shape_overhead_bytes(shape)
    total = weights_bytes + kv + overhead
    return MemoryEstimate(weights_bytes, kv, overhead, ctx, verdict_for(total, machine))


def estimate_memory(
    info: GGUFInfo, context_length: int | None = None, machine: MachineInfo | None = None
) -> MemoryEstimate:
    """Memory needed to chat with ``info`` at ``context_length`` (default: min(model, 4096)).

    Args:
        info: the model's facts.
        context_length: tokens of context; None picks the default.
        machine: the machine to judge against; None reads this one.
    """
    return estimate_for(info.weights_bytes, ModelShape.of(info), context_length, machine)


def estimate_from_file_size(
    size_bytes: int, context_length: int | None = None, machine: MachineInfo | None = None
) -> MemoryEstimate:
    """The same estimate for a model known only by its file size (a rougher figure).

    The whole file counts as weights (the header is a few MB at most) and the model is assumed
    to have a `ModelShape.typical` shape.
    """
    return estimate_for(size_bytes, ModelShape.typical(), context_length, machine)


def max_context_that_fits(info: GGUFInfo, machine: MachineInfo | None = None) -> int:
    """The largest power-of-two context (≤ the model's) whose estimate still ``fits``."""
    machine = machine or machine_info()
    ctx = max(min(info.context_length, MAX_CONTEXT), 512)
    while ctx > 512 and estimate_memory(info, ctx, machine).verdict != "fits":
        ctx //= 2
    return ctx


def context_within_memory(info: GGUFInfo, budget_bytes: float) -> int:
    """The most tokens of context whose estimate stays within ``budget_bytes`` (0 if none).

    Solved directly from the estimate's formula (weights and overhead are fixed, the KV cache
    grows by the same bytes per token), so a damaged file claiming billions of tokens costs
    nothing to answer.
    """
    fixed = info.weights_bytes + _overhead_bytes(info)
    per_token = _kv_bytes_per_token(info)
    room = int(budget_bytes) - fixed
    if room <= 0:
        return 0
    return MAX_CONTEXT if per_token <= 0 else min(room // per_token, MAX_CONTEXT)


def context_for_load(
    info: GGUFInfo,
    requested: int | None = None,
    machine: MachineInfo | None = None,
    minimum: int = 256,
) -> int:
    """Tokens of context to load ``info`` with, capped before anything is allocated.

    The request (or, when None, the model's own length up to `DEFAULT_CONTEXT`) is capped at
    the model's trained length and at what this machine's memory allows: a default must
    ``fit`` comfortably, an explicit request may use memory up to the ``tight`` limit. A file
    claiming 2^31 tokens of context is thus loaded with what the machine can hold, instead of
    llama.cpp trying to allocate it.

    Args:
        info: the model's facts.
        requested: tokens of context asked for; None picks the default.
        machine: the machine to judge against; None reads this one.
        minimum: never go below this (the engine's smallest usable context).
    """
    machine = machine or machine_info()
    trained = min(info.context_length or DEFAULT_CONTEXT, MAX_CONTEXT)
    if requested is None:
        ctx = min(trained, DEFAULT_CONTEXT, max_context_that_fits(info, machine))
    else:
        budget = TOTAL_SHARE * machine.total_ram
        ctx = min(requested, trained, max(context_within_memory(info, budget), minimum))
    return max(ctx, minimum)


def _kv_bytes_per_token(info: GGUFInfo) -> int:
    return kv_cache_bytes(
        info.block_count, info.head_count_kv, info.key_length, info.value_length, 1
    )


def _overhead_bytes(info: GGUFInfo) -> int:
    return _shape_overhead_bytes(ModelShape.of(info))


def _shape_overhead_bytes(shape: ModelShape) -> int:
    """Compute buffers, logits scratch, and llama.cpp's ~4 bytes per trained context position."""
    trained = min(shape.context_length or 0, MAX_CONTEXT) * TRAINED_CONTEXT_BYTES_PER_TOKEN
    return COMPUTE_OVERHEAD_BYTES + shape.vocab_size * 4 * OVERHEAD_LOGIT_ROWS + trained


# -- GPU offload ----------------------------------------------------------------------------------

# Device memory kept free when deciding how many layers to offload: the driver, the display and
# other programs use some, and llama.cpp's compute buffer on the device grows with the context.
DEVICE_RESERVE_BYTES = 512 * 1024 * 1024
DEVICE_RESERVE_SHARE = 0.1  # of the device's free memory, when that is more than the fixed part


@dataclass(frozen=True)
class OffloadPlan:
    """How many layers go to the GPU and the device memory they take."""

    gpu_layers: int  # llama.cpp's n_gpu_layers: block_count + 1 also moves the output layer
    device_bytes: int


def offload_layers(
    layer_bytes: list[int],
    kv_bytes_per_layer: int,
    device_free_bytes: int | None,
    output_bytes: int = 0,
    reserve_bytes: int | None = None,
) -> OffloadPlan:
    """How many layers to offload to a device with ``device_free_bytes`` free (a pure function).

    llama.cpp offloads the *last* ``n`` blocks, each taking its weights and its KV cache with
    it; ``n = blocks + 1`` also moves the output layer. Layers are added from the last one while
    they fit in the free memory less a reserve (`DEVICE_RESERVE_BYTES`, or
    `DEVICE_RESERVE_SHARE` of the free memory when more).

    Args:
        layer_bytes: weight bytes of each block, in order (from the tensor table).
        kv_bytes_per_layer: KV cache bytes of one block at the context to be loaded.
        device_free_bytes: the device's free memory; None or 0 means no device (all CPU).
        output_bytes: weight bytes of the output layer (moved only when every block fits).
        reserve_bytes: override the reserve.
    """
    if not device_free_bytes or device_free_bytes <= 0 or not layer_bytes:
        return OffloadPlan(0, 0)
    reserve = reserve_bytes
    if reserve is None:
        reserve = max(DEVICE_RESERVE_BYTES, int(device_free_bytes * DEVICE_RESERVE_SHARE))
    room = device_free_bytes - reserve
    used = 0
    count = 0
    for size in reversed(layer_bytes):
        need = size + kv_bytes_per_layer
        if used + need > room:
            break
        used += need
        count += 1
    if count == len(layer_bytes) and used + output_bytes <= room:
        return OffloadPlan(count + 1, used + output_bytes)
    return OffloadPlan(count, used)


def layer_weight_bytes(info: GGUFInfo) -> tuple[list[int], int]:
    """Weight bytes per block (``blk.N.*`` tensors) and of the output layer, from the table."""
    blocks = [0] * info.block_count
    output = 0
    for tensor in info.tensors:
        parts = tensor.name.split(".")
        if parts[0] == "blk" and len(parts) > 2 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(blocks):
                blocks[index] += tensor.n_bytes
        elif parts[0] in ("output", "output_norm"):
            output += tensor.n_bytes
    return blocks, output


def plan_offload(
    info: GGUFInfo,
    context_length: int,
    device_free_bytes: int | None,
    requested: int | None = None,
) -> OffloadPlan:
    """The offload for ``info`` at ``context_length``: the user's layer count, or decided.

    Args:
        info: the model's facts.
        context_length: tokens of context it will be loaded with.
        device_free_bytes: free memory of the GPU; None: no GPU (or offload unsupported).
        requested: layers the user asked for (None: decide; 0: CPU only).
    """
    blocks, output = layer_weight_bytes(info)
    kv_per_layer = _kv_bytes_per_token(info) * context_length // max(info.block_count, 1)
    if requested is not None:
        count = max(0, min(requested, len(blocks) + 1))
        if not device_free_bytes or count == 0:
            return OffloadPlan(count if device_free_bytes else 0, 0)
        chosen = blocks[len(blocks) - min(count, len(blocks)) :]
        used = sum(chosen) + kv_per_layer * len(chosen) + (output if count > len(blocks) else 0)
        return OffloadPlan(count, used)
    return offload_layers(blocks, kv_per_layer, device_free_bytes, output)


def estimate_with_offload(
    info: GGUFInfo,
    context_length: int | None = None,
    machine: MachineInfo | None = None,
    device_free_bytes: int | None = None,
    requested_layers: int | None = None,
) -> MemoryEstimate:
    """`estimate_memory` with the offloaded part in the device: the verdict judges the RAM part."""
    base = estimate_memory(info, context_length, machine)
    plan = plan_offload(info, base.context_length, device_free_bytes, requested_layers)
    if plan.gpu_layers == 0:
        return base
    ram = base.total_bytes - plan.device_bytes
    return MemoryEstimate(
        base.weights_bytes,
        base.kv_cache_bytes,
        base.overhead_bytes,
        base.context_length,
        verdict_for(ram, machine),
        gpu_layers=plan.gpu_layers,
        device_bytes=plan.device_bytes,
    )
