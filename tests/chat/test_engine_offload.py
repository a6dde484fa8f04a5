"""The CPU path of GPU offload on this machine (a llama.cpp build without a GPU backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.llama.devices import CPU_ONLY, offload_support
from slmdesk.llama.engine import ChatEngine, EngineError, SamplingSettings


def test_this_build_reports_cpu_only() -> None:
    support = offload_support()
    assert support.supported is False  # the test machine's llama.cpp has no GPU backend
    assert support.summary() == CPU_ONLY
    assert [d.kind for d in support.devices][:1] == ["cpu"]  # ggml's device list, read for real
    assert support.as_dict()["backend"] == "CPU"


@pytest.mark.parametrize("layers", [None, 0, 99])
def test_loads_on_the_cpu_automatically_or_when_asked(tiny_model: Path, layers: int | None) -> None:
    engine = ChatEngine()
    try:
        loaded = engine.load(tiny_model, context_length=512, n_gpu_layers=layers, prove=False)
        assert loaded.gpu_layers == 0  # nothing to offload to
        result = engine.generate(
            [{"role": "user", "content": "hi"}], SamplingSettings(seed=1, max_tokens=4)
        )
        assert result.text is not None
    finally:
        engine.unload()


def test_a_negative_layer_count_is_a_sentence(tiny_model: Path) -> None:
    engine = ChatEngine()
    try:
        with pytest.raises(EngineError, match="GPU layers must be 0 or more"):
            engine.load(tiny_model, n_gpu_layers=-1, prove=False)
    finally:
        engine.unload()


def test_the_estimate_here_matches_the_cpu_estimate_on_a_cpu_build(tiny_model: Path) -> None:
    from slmdesk.llama.devices import estimate_on_this_machine, gpu_free_bytes
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.hardware import estimate_memory

    info = read_gguf_info(tiny_model)
    assert gpu_free_bytes() is None
    for layers in (None, 0, 8):
        here = estimate_on_this_machine(info, 512, layers)
        cpu = estimate_memory(info, 512)
        assert here.gpu_layers == 0 and here.total_bytes == cpu.total_bytes
        assert here.verdict == cpu.verdict
