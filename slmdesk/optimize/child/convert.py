"""Quantize and prune in the optimizer child: one conversion, the pruned-metadata fix-up, and the
dry runs that tell which type llama.cpp would give each tensor."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama import quantize as native
from slmdesk.llama.quantize import quantize_file
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.optimize.prune import fix_pruned_file


def prune_and_fix(
    source: str,
    dest: str,
    ftype: int,
    prune_layers: Sequence[int],
    allow_requantize: bool = True,
    only_copy: bool = False,
    n_threads: int = 2,
    importance: Mapping[str, np.ndarray] | None = None,
    embedding_type: str | None = None,
    output_type: str | None = None,
) -> list[str]:
    """Quantize/prune ``source`` into ``dest`` and repair the pruned metadata.

    ``importance``: per-column importance values (an importance matrix); ``embedding_type`` and
    ``output_type``: ggml type names for the token embedding and the output tensor.
    """
    quantize_file(
        source,
        dest,
        ftype,
        allow_requantize,
        only_copy,
        prune_layers,
        n_threads,
        importance=importance,
        embedding_type=_ggml_code(embedding_type),
        output_type=_ggml_code(output_type),
    )
    if not prune_layers:
        return []
    return fix_pruned_file(read_gguf_info(source), prune_layers, Path(dest))


def _ggml_code(type_name: str | None) -> int | None:
    if type_name is None:
        return None
    import gguf

    return int(gguf.GGMLQuantizationType[type_name.upper()])


_DRY_LINE = re.compile(
    r"^\[\s*\d+/\s*\d+\]\s+(\S+)\s+-\s+\[[^\]]*\],\s+type\s*=\s*(\S+),\s+size\s*=\s*[\d.]+\s*MiB"
    r"(?:\s*->\s*[\d.]+\s*MiB\s*\((\S+)\))?"
)


def dry_run_types(
    source: str,
    ftypes: dict[str, int],
    n_threads: int,
    report: Callable[[str, int, int, str], None],
    prune_layers: Sequence[int] = (),
) -> dict[str, Any]:
    """For each type name, llama.cpp's chosen type per tensor (from a dry run's log; with
    ``prune_layers``, named as the pruned file names them)."""
    out: dict[str, Any] = {}
    for i, (name, code) in enumerate(ftypes.items()):
        native.start_capture()
        error = None
        try:
            quantize_file(
                source, os.devnull, code, True, False, prune_layers, n_threads, dry_run=True
            )
        except SlmdeskError as exc:
            error = str(exc)
        text = native.stop_capture()
        tensor_types: dict[str, str] = {}
        for line in text.splitlines():
            match = _DRY_LINE.match(line.strip())
            if match:
                tensor_types[match[1]] = (match[3] or match[2]).upper()
        out[name] = {
            "tensor_types": tensor_types,
            "needs_imatrix": "requires an importance matrix" in text
            or "requires an imatrix" in text,
            "error": error,
        }
        report("preview", i + 1, len(ftypes), name)
    return out
