"""llama.cpp's quantizer (`llama_model_quantize`) and its log, for the optimizer child process.

llama.cpp logs one line per tensor while it quantizes; `install_log` forwards that log to stderr
(where the parent reads progress) and can capture it (dry runs report tensor types only there).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.imatrix import imatrix_array

_captured: list[str] | None = None
_callback: Any = None


def start_capture() -> None:
    """Start keeping llama.cpp's log lines (see `stop_capture`)."""
    global _captured
    _captured = []


def stop_capture() -> str:
    """Stop capturing; returns the log text captured since `start_capture`."""
    global _captured
    text = "".join(_captured or [])
    _captured = None
    return text


def install_log(forward: bool, listener: Callable[[str], None] | None = None) -> None:
    """Route llama.cpp's log to stderr (for the parent), to an optional capture buffer and to
    ``listener``, which gets each chunk as llama.cpp writes it (a line may come in pieces)."""
    global _callback
    import llama_cpp

    def on_log(level: int, text: bytes, user_data: Any) -> None:
        chunk = text.decode("utf-8", errors="replace") if text else ""
        if _captured is not None:
            _captured.append(chunk)
        if forward:
            os.write(2, chunk.encode("utf-8"))
        if listener is not None:
            listener(chunk)

    _callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def quantize_file(
    source: str,
    dest: str,
    ftype: int,
    allow_requantize: bool = True,
    only_copy: bool = False,
    prune_layers: Sequence[int] = (),
    n_threads: int = 2,
    dry_run: bool = False,
    importance: Mapping[str, np.ndarray] | None = None,
    embedding_type: int | None = None,
    output_type: int | None = None,
) -> None:
    """Call llama_model_quantize once (in this process).

    ``importance`` maps weight names to per-column importance values (llama/imatrix.py).
    ``embedding_type`` and ``output_type`` are ggml tensor types (`gguf.GGMLQuantizationType`)
    for the token embedding and the output tensor; None keeps llama.cpp's choice for ``ftype``.
    In small models these two hold most of the bytes (Gemma 3 270M: 170M of 268M parameters).
    """
    import llama_cpp

    _check_row_types(Path(source), embedding_type, output_type)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = allow_requantize
    params.only_copy = only_copy
    params.nthread = n_threads
    params.dry_run = dry_run
    if embedding_type is not None:
        params.token_embedding_type = embedding_type
    if output_type is not None:
        params.output_tensor_type = output_type
    keep_alive = None
    if prune_layers:
        # llama-quant.cpp reads until -1 and uses prune.front() as the lowest index: sort it.
        values = [*sorted(int(i) for i in prune_layers), -1]
        keep_alive = (ctypes.c_int32 * len(values))(*values)
        params.prune_layers = keep_alive
    imatrix_keep: list[Any] = []
    if importance:
        entries, imatrix_keep = imatrix_array(dict(importance))
        params.imatrix = entries
    rc = llama_cpp.llama_model_quantize(
        source.encode("utf-8"), dest.encode("utf-8"), ctypes.byref(params)
    )
    del keep_alive, imatrix_keep
    if rc != 0:
        raise SlmdeskError(f"llama.cpp could not convert {Path(source).name} (code {rc}).")


def _check_row_types(source: Path, embedding_type: int | None, output_type: int | None) -> None:
    """Refuse an embedding or output type whose block does not divide the tensor's rows.

    llama.cpp falls back to another type for such tensors on its own, but an explicit type
    bypasses that and aborts the process (Gemma 3's 640-wide rows and the 256-wide K-quants).
    """
    if embedding_type is None and output_type is None:
        return
    import gguf

    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.models.row_types import row_type_problem

    def name(code: int | None) -> str | None:
        return None if code is None else gguf.GGMLQuantizationType(code).name

    shapes = {t.name: t.shape for t in read_gguf_info(source).tensors}
    problem = row_type_problem(shapes, name(embedding_type), name(output_type))
    if problem:
        raise SlmdeskError(problem)
