"""Importance matrix: for each weight matrix, the mean of the squared input activations per input
column, measured while the model reads calibration text.

llama.cpp's quantizer uses these values to spend precision on the columns that carry large
activations; the lowest-bit types (IQ1/IQ2/IQ3) refuse to quantize without them. llama.cpp computes
the same statistic in its `llama-imatrix` tool; slmdesk measures it in-process through the context's
evaluation callback, which hands over every matrix multiplication the graph computes.

Runs in the optimizer child process (it drives llama.cpp directly and is not thread-safe).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError

log = logging.getLogger(__name__)

# ggml's limits, as compiled into the bundled library (checked against the library at run time).
_MAX_DIMS = 4
_MAX_OP_PARAMS = 64
_MAX_SRC = 10
_MAX_NAME = 64
_TYPE_F32 = 0
_WEIGHT_SUFFIX = ".weight"


class _TensorHead(ctypes.Structure):
    """The leading fields of ggml's `struct ggml_tensor`, as far as the name."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * _MAX_DIMS),
        ("nb", ctypes.c_size_t * _MAX_DIMS),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * (_MAX_OP_PARAMS // 4)),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * _MAX_SRC),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * _MAX_NAME),
    ]


_NAME_OFFSET = _TensorHead.name.offset


@dataclass
class ImportanceMatrix:
    """Sums of squared activations per weight matrix, and how many activation rows each saw."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    chunks: int = 0
    tokens: int = 0

    def add(self, name: str, rows: np.ndarray) -> None:
        """Add one batch of activation rows (shape rows × columns) for the weight ``name``."""
        squares = np.einsum("ij,ij->j", rows, rows, dtype=np.float64)
        if name in self.sums:
            if self.sums[name].shape != squares.shape:
                raise SlmdeskError(f"Activations for {name} changed width during calibration.")
            self.sums[name] += squares
            self.counts[name] += rows.shape[0]
        else:
            self.sums[name] = squares
            self.counts[name] = rows.shape[0]

    def means(self) -> dict[str, np.ndarray]:
        """The importance values llama.cpp takes: per-column mean of squared activations."""
        return {
            name: (total / max(self.counts[name], 1)).astype(np.float32)
            for name, total in self.sums.items()
        }


class _ggml:
    """The few ggml functions the callback needs, with their C signatures declared."""

    lib: Any = None

    @classmethod
    def load(cls) -> Any:
        if cls.lib is None:
            from llama_cpp import _ggml as bundled

            lib = bundled.libggml
            lib.ggml_get_name.restype = ctypes.c_void_p
            lib.ggml_get_name.argtypes = [ctypes.c_void_p]
            lib.ggml_op_desc.restype = ctypes.c_char_p
            lib.ggml_op_desc.argtypes = [ctypes.c_void_p]
            lib.ggml_nbytes.restype = ctypes.c_size_t
            lib.ggml_nbytes.argtypes = [ctypes.c_void_p]
            lib.ggml_is_contiguous.restype = ctypes.c_bool
            lib.ggml_is_contiguous.argtypes = [ctypes.c_void_p]
            lib.ggml_backend_tensor_get.restype = None
            lib.ggml_backend_tensor_get.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_size_t,
            ]
            cls.lib = lib
        return cls.lib


class ActivationCollector:
    """The evaluation callback: asks for every weight multiplication and sums its input's squares.

    llama.cpp calls it twice per graph node: once with ``ask`` true (does the caller want this
    node?), then, for the nodes it wanted, with ``ask`` false once the node is computed. Any
    surprise (an unknown tensor layout, an exception) stops the computation and is re-raised by
    `check` instead of crashing the process from inside a C callback.
    """

    def __init__(self, matrix: ImportanceMatrix) -> None:
        self.matrix = matrix
        self.error: BaseException | None = None
        self._lib = _ggml.load()
        self._layout_checked = False
        self.callback = self._make_callback()

    def _make_callback(self) -> Any:
        import llama_cpp

        def on_eval(tensor: int, ask: bool, user_data: Any) -> bool:
            try:
                if ask:
                    return self._wanted(tensor)
                self._collect(tensor)
                return True
            except BaseException as exc:
                self.error = exc
                return False

        return llama_cpp.ggml_backend_sched_eval_callback(on_eval)

    def check(self) -> None:
        """Raise what went wrong inside the callback, if anything."""
        if self.error is not None:
            error, self.error = self.error, None
            if isinstance(error, SlmdeskError):
                raise error
            raise SlmdeskError(f"Measuring activations failed: {error}") from error

    def _head(self, address: int) -> _TensorHead:
        if not self._layout_checked:
            name_at = self._lib.ggml_get_name(address)
            if name_at - address != _NAME_OFFSET:
                raise SlmdeskError(
                    "This llama.cpp build lays out its tensors differently from what slmdesk "
                    "expects, so the importance matrix cannot be measured."
                )
            self._layout_checked = True
        return _TensorHead.from_address(address)

    def _weight_and_input(self, address: int) -> tuple[str, int] | None:
        """(weight name, input tensor address) when the node multiplies a weight by F32 rows."""
        if self._lib.ggml_op_desc(address) != b"MUL_MAT":
            return None
        head = self._head(address)
        weight, rows = head.src[0], head.src[1]
        if not weight or not rows:
            return None
        name = self._head(weight).name.decode("utf-8", errors="replace")
        if not name.endswith(_WEIGHT_SUFFIX):
            return None
        if self._head(rows).type != _TYPE_F32:
            return None
        return name, rows

    def _wanted(self, address: int) -> bool:
        return self._weight_and_input(address) is not None

    def _collect(self, address: int) -> None:
        found = self._weight_and_input(address)
        if found is None:
            return
        name, rows_at = found
        rows = self._head(rows_at)
        width = int(rows.ne[0])
        if not self._lib.ggml_is_contiguous(rows_at) or width <= 0:
            log.debug("skipping non-contiguous input of %s", name)
            return
        nbytes = int(self._lib.ggml_nbytes(rows_at))
        values = np.empty(nbytes // 4, dtype=np.float32)
        self._lib.ggml_backend_tensor_get(rows_at, values.ctypes.data, 0, nbytes)
        self.matrix.add(name, values.reshape(-1, width))


def measure_importance(
    runner_factory: Callable[[Any], Any],
    texts: Iterable[str],
    chunk_tokens: int,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> ImportanceMatrix:
    """Read ``texts`` through the model in chunks and return the importance matrix.

    Args:
        runner_factory: builds a `ModelRunner` given the evaluation callback to install.
        texts: calibration texts; each is tokenized and cut into chunks of ``chunk_tokens``.
        chunk_tokens: tokens per chunk (the context the activations are measured in).
        cancelled: polled between chunks.
        progress: called with (chunks done, chunks in all).
    """
    matrix = ImportanceMatrix()
    collector = ActivationCollector(matrix)
    with runner_factory(collector.callback) as runner:
        chunks = [
            tokens[start : start + chunk_tokens]
            for tokens in (runner.tokenize(text) for text in texts)
            for start in range(0, len(tokens), chunk_tokens)
            if len(tokens) - start >= 8
        ]
        if not chunks:
            raise SlmdeskError("The calibration text is too short to measure an importance matrix.")
        for done, chunk in enumerate(chunks):
            if cancelled():
                raise SlmdeskError("Cancelled.")
            runner.read(chunk)
            collector.check()
            matrix.chunks += 1
            matrix.tokens += len(chunk)
            progress(done + 1, len(chunks))
    if not matrix.sums:
        raise SlmdeskError("llama.cpp reported no weight multiplications to measure.")
    return matrix


def save_importance(matrix: ImportanceMatrix, path: Path, dataset: str) -> None:
    """Write the matrix as a GGUF file (temporary name, then rename).

    One F32 tensor ``<weight>.in_sum2`` (the sums of squares) and one ``<weight>.counts`` per
    weight, and the chunk count, as llama.cpp's own importance files hold them.
    """
    import gguf

    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch="imatrix")
    writer.add_type("imatrix")
    writer.add_array("imatrix.datasets", [dataset])
    writer.add_uint32("imatrix.chunk_count", matrix.chunks)
    writer.add_uint32("imatrix.chunk_size", max(matrix.tokens // max(matrix.chunks, 1), 1))
    for name in sorted(matrix.sums):
        writer.add_tensor(f"{name}.in_sum2", matrix.sums[name].astype(np.float32).reshape(1, -1))
        writer.add_tensor(f"{name}.counts", np.array([[matrix.counts[name]]], dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)


# An importance file is hostile input like any model file: bound what it may hold.
MAX_IMPORTANCE_TENSORS = 20_000
MAX_IMPORTANCE_VALUES = 64 * 1024 * 1024


def load_importance(path: Path) -> ImportanceMatrix:
    """Read an importance file written by `save_importance`, refusing anything malformed."""
    import gguf

    name = path.name
    try:
        reader = gguf.GGUFReader(str(path), "r")
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise SlmdeskError(f"{name} is not a readable importance matrix file ({exc}).") from None
    if len(reader.tensors) > MAX_IMPORTANCE_TENSORS:
        raise SlmdeskError(f"{name} holds too many tensors for an importance matrix.")
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    total = 0
    for tensor in reader.tensors:
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise SlmdeskError(f"{name}: tensor {tensor.name[:80]} is not F32.")
        values = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        total += values.size
        if total > MAX_IMPORTANCE_VALUES:
            raise SlmdeskError(f"{name} is too large for an importance matrix.")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise SlmdeskError(f"{name}: tensor {tensor.name[:80]} holds invalid values.")
        if tensor.name.endswith(".in_sum2"):
            sums[tensor.name.removesuffix(".in_sum2")] = values.astype(np.float64)
        elif tensor.name.endswith(".counts"):
            if values.size != 1:
                raise SlmdeskError(f"{name}: {tensor.name[:80]} is not a single count.")
            counts[tensor.name.removesuffix(".counts")] = int(values[0])
    if set(sums) != set(counts) or not sums:
        raise SlmdeskError(f"{name} does not pair every sum with its count.")
    field_ = reader.get_field("imatrix.chunk_count")
    chunks = int(field_.contents()) if field_ is not None else 0
    return ImportanceMatrix(sums=sums, counts=counts, chunks=chunks)


def imatrix_array(means: dict[str, np.ndarray]) -> tuple[Any, list[Any]]:
    """The NULL-terminated ``llama_model_imatrix_data`` array llama_model_quantize takes.

    Returns the array and the Python objects that must stay alive while llama.cpp reads it.
    """
    import llama_cpp

    entries = (llama_cpp.llama_model_imatrix_data * (len(means) + 1))()
    keep: list[Any] = [entries]
    for slot, (name, values) in enumerate(sorted(means.items())):
        data = np.ascontiguousarray(values, dtype=np.float32)
        encoded = name.encode("utf-8")
        keep += [data, encoded]
        entries[slot].name = encoded
        entries[slot].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        entries[slot].size = data.size
    entries[len(means)].name = None
    return entries, keep
