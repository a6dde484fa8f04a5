"""Facts about the native llama.cpp library in this process: its version, the CPU variant that
was loaded, and a minimal load-and-generate check (used by `slmdesk doctor`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def loaded_cpu_backend() -> str | None:
    """Path of the ggml CPU library mapped into this process (None if it cannot be seen)."""
    try:
        import psutil

        maps = psutil.Process().memory_maps(grouped=True)
    except Exception:
        return None
    for entry in maps:
        name = Path(entry.path).name
        if "ggml-cpu" in name:
            return entry.path
    return None


def cpu_variant_name(backend_path: str | None) -> str:
    """``haswell`` for ``libggml-cpu-haswell.so``; ``single build`` for a plain ``ggml-cpu``."""
    if not backend_path:
        return "unknown"
    stem = Path(backend_path).name.split(".")[0]
    stem = stem.removeprefix("lib").removeprefix("ggml-cpu")
    return stem.lstrip("-") or "single build (not portable)"


def llama_runtime() -> dict[str, Any]:
    """Initialize llama.cpp's backends and describe them: version, CPU features, variant."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", errors="replace") if isinstance(info, bytes) else str(info)
    backend = loaded_cpu_backend()
    return {
        "llama_cpp": str(getattr(llama_cpp, "__version__", "?")),
        "system_info": text.strip(),
        "cpu_backend": backend,
        "cpu_variant": cpu_variant_name(backend),
    }


def generate_tokens(model: Path, n_tokens: int = 8) -> dict[str, Any]:
    """Load ``model`` with llama.cpp and generate exactly ``n_tokens`` greedy tokens."""
    import llama_cpp

    from slmdesk.models.hardware import machine_info

    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=256,
        n_batch=64,
        n_threads=machine_info().physical_cores,
        verbose=False,
    )
    loaded = time.perf_counter()
    try:
        prompt = llm.tokenize(b"Hello, how are you today?", add_bos=True)
        out: list[int] = []
        for token in llm.generate(prompt, temp=0.0, reset=True):
            out.append(int(token))
            if len(out) >= n_tokens:
                break
        done = time.perf_counter()
        text = llm.detokenize(out).decode("utf-8", errors="replace")
    finally:
        llm.close()
    gen_seconds = max(done - loaded, 1e-9)
    return {
        "path": str(model),
        "tokens": len(out),
        "text": text,
        "load_seconds": round(loaded - started, 3),
        "generate_seconds": round(gen_seconds, 3),
        "tokens_per_second": round(len(out) / gen_seconds, 1),
    }


def llama_version() -> str:
    """The llama-cpp-python version (imports the native library on first use)."""
    import llama_cpp

    return str(getattr(llama_cpp, "__version__", "?"))
