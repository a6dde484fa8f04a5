"""How many layers go to a GPU: decided from the device's free memory, per-layer sizes from the
tensor table and the KV cache; the estimate's verdict then judges only what stays in RAM.

This machine has no GPU: the decision is a pure function, tested with realistic figures; the
CPU path (a build without offload) is tested for real in tests/chat/test_engine_offload.py.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models import hardware
from slmdesk.models.gguf_info import read_gguf_info

MB = 1024 * 1024
GB = 1024 * MB
# Llama 3.2 1B at Q4_K_M: 16 blocks of about 44 MB, a 128k-vocabulary output layer of ~210 MB,
# and 8 KV heads × 64 × 2 (K and V) × 2 bytes = 2 KiB per token per layer: 8 MB at 4,096 tokens.
LLAMA_1B_BLOCKS = [44 * MB] * 16
LLAMA_1B_OUTPUT = 210 * MB
LLAMA_1B_KV_PER_LAYER = 8 * MB


def test_a_1b_model_goes_entirely_to_a_2_gb_device() -> None:
    plan = hardware.offload_layers(
        LLAMA_1B_BLOCKS, LLAMA_1B_KV_PER_LAYER, 2 * GB, output_bytes=LLAMA_1B_OUTPUT
    )
    assert plan.gpu_layers == 17  # every block and the output layer
    assert plan.device_bytes == 16 * (44 + 8) * MB + LLAMA_1B_OUTPUT
    assert plan.device_bytes <= 2 * GB - hardware.DEVICE_RESERVE_BYTES


def test_a_small_device_takes_the_last_layers_that_fit() -> None:
    plan = hardware.offload_layers(
        LLAMA_1B_BLOCKS, LLAMA_1B_KV_PER_LAYER, 1 * GB, output_bytes=LLAMA_1B_OUTPUT
    )
    # 1 GB less the 512 MB reserve holds 9 blocks of 52 MB, not the output layer.
    assert plan.gpu_layers == 9
    assert plan.device_bytes == 9 * 52 * MB


def test_a_device_smaller_than_the_reserve_takes_nothing() -> None:
    plan = hardware.offload_layers(LLAMA_1B_BLOCKS, LLAMA_1B_KV_PER_LAYER, 400 * MB)
    assert plan == hardware.OffloadPlan(0, 0)


def test_no_device_means_the_cpu() -> None:
    assert hardware.offload_layers(LLAMA_1B_BLOCKS, LLAMA_1B_KV_PER_LAYER, None).gpu_layers == 0
    assert hardware.offload_layers(LLAMA_1B_BLOCKS, LLAMA_1B_KV_PER_LAYER, 0).gpu_layers == 0


def test_uneven_layers_are_counted_from_the_last() -> None:
    blocks = [100 * MB] * 4 + [10 * MB] * 4  # llama.cpp offloads the last blocks first
    plan = hardware.offload_layers(blocks, 0, 600 * MB, reserve_bytes=512 * MB)
    assert plan == hardware.OffloadPlan(4, 40 * MB)


def test_layer_sizes_come_from_the_tensor_table(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    blocks, output = hardware.layer_weight_bytes(info)
    assert len(blocks) == info.block_count and min(blocks) > 0
    assert sum(blocks) + output < info.weights_bytes  # the token embedding stays on the CPU


def test_the_verdict_judges_the_ram_part(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    tiny_machine = hardware.MachineInfo(200 * MB, 20 * MB, 2, 2)  # too little RAM for it all
    cpu = hardware.estimate_with_offload(info, 512, tiny_machine, None)
    gpu = hardware.estimate_with_offload(info, 512, tiny_machine, 8 * GB)
    assert cpu.gpu_layers == 0 and cpu.device_bytes == 0 and cpu.ram_bytes == cpu.total_bytes
    assert gpu.gpu_layers == info.block_count + 1
    assert gpu.total_bytes == cpu.total_bytes  # the same bytes, some in the device
    assert gpu.ram_bytes == cpu.total_bytes - gpu.device_bytes
    assert gpu.device_bytes > 0
    assert gpu.as_dict()["ram_bytes"] == gpu.ram_bytes
    # A user's layer count is kept, and 0 means the CPU.
    assert hardware.estimate_with_offload(info, 512, tiny_machine, 8 * GB, 2).gpu_layers == 2
    assert hardware.estimate_with_offload(info, 512, tiny_machine, 8 * GB, 0).gpu_layers == 0
