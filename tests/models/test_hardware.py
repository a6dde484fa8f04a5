"""Memory estimates and verdicts."""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.hardware import (
    DEFAULT_CONTEXT,
    TRAINED_CONTEXT_BYTES_PER_TOKEN,
    MachineInfo,
    ModelShape,
    estimate_for,
    estimate_from_file_size,
    estimate_memory,
    kv_cache_bytes,
    machine_info,
    max_context_that_fits,
    verdict_for,
)

GB = 1024**3


def test_machine_info_is_plausible() -> None:
    info = machine_info()
    assert info.total_ram >= info.available_ram > 0
    assert info.logical_cores >= info.physical_cores >= 1


def test_kv_cache_formula() -> None:
    # 4 layers * 2 kv heads * (64 + 64) * 2 bytes * 1024 tokens
    assert kv_cache_bytes(4, 2, 64, 64, 1024) == 4 * 2 * 128 * 2 * 1024
    # sliding-window layers only hold their window
    assert kv_cache_bytes(6, 1, 256, 256, 4096, 512, 5) == 1 * 512 * 2 * (1 * 4096 + 5 * 512)


def test_verdicts_against_a_given_machine() -> None:
    laptop = MachineInfo(total_ram=8 * GB, available_ram=4 * GB, physical_cores=4, logical_cores=8)
    assert verdict_for(1 * GB, laptop) == "fits"
    assert verdict_for(5 * GB, laptop) == "tight"
    assert verdict_for(8 * GB, laptop) == "too big"


def test_estimate_grows_with_context(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    small = estimate_memory(info, 512)
    large = estimate_memory(info, 2048)
    assert large.kv_cache_bytes == 4 * small.kv_cache_bytes
    assert small.weights_bytes == info.weights_bytes
    assert small.verdict == "fits"


def test_max_context_shrinks_on_a_small_machine(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    roomy = MachineInfo(total_ram=16 * GB, available_ram=16 * GB, physical_cores=4, logical_cores=8)
    assert max_context_that_fits(info, roomy) == info.context_length
    need_512 = estimate_memory(info, 512, roomy).total_bytes
    available = int(need_512 / 0.7) + 1
    cramped = MachineInfo(
        total_ram=2 * available, available_ram=available, physical_cores=1, logical_cores=1
    )
    assert max_context_that_fits(info, cramped) == 512


def test_one_formula_for_a_header_and_for_a_file_size(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    from_header = estimate_memory(info, 1024)
    assert from_header == estimate_for(info.weights_bytes, ModelShape.of(info), 1024)
    typical = ModelShape.typical()
    from_size = estimate_from_file_size(info.size_bytes)
    assert from_size == estimate_for(info.size_bytes, typical)
    # The same context assumption (the default) and the same overhead rule (fixed + vocabulary
    # + the trained context, unknown for a file known by its size).
    assert from_size.context_length == DEFAULT_CONTEXT
    assert from_size.overhead_bytes - from_header.overhead_bytes == (
        (typical.vocab_size - info.vocab_size) * 4 * 32
        - info.context_length * TRAINED_CONTEXT_BYTES_PER_TOKEN
    )
    half = estimate_from_file_size(info.size_bytes, DEFAULT_CONTEXT // 2)
    assert abs(half.kv_cache_bytes * 2 - from_size.kv_cache_bytes) <= 2  # rounding
