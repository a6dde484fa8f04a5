"""Read and validate GGUF model files, fast.

Only the header, the metadata and the tensor table are read, never the weights: a 250 MB model
with a 262k-token vocabulary is inspected in well under a second (the generic reader in the
``gguf`` package parses every vocabulary string into its own array and takes tens of seconds).
The value-type and quantization tables come from the ``gguf`` package.

Validation catches what would crash or mislead llama.cpp — wrong magic, unsupported version,
absurd counts, strings or arrays running past the end, duplicate tensor names, tensor data beyond
the end of the file — and reports each as one human sentence in an `InvalidModelError`.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_DIMS = 4
_SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)

# GGUF value types, by their codes in the file format (the same numbers as the gguf package's
# GGUFValueType; spelled out here so that reading a header does not import numpy and the gguf
# package, which costs a noticeable part of the app's start-up).
_STRING, _ARRAY = 8, 9
SCALAR_FORMATS: dict[int, str] = {
    0: "<B",  # UINT8
    1: "<b",  # INT8
    2: "<H",  # UINT16
    3: "<h",  # INT16
    4: "<I",  # UINT32
    5: "<i",  # INT32
    6: "<f",  # FLOAT32
    7: "<?",  # BOOL
    10: "<Q",  # UINT64
    11: "<q",  # INT64
    12: "<d",  # FLOAT64
}
_TYPE_NAMES = {
    0: "UINT8",
    1: "INT8",
    2: "UINT16",
    3: "INT16",
    4: "UINT32",
    5: "INT32",
    6: "FLOAT32",
    7: "BOOL",
    8: "STRING",
    9: "ARRAY",
    10: "UINT64",
    11: "INT64",
    12: "FLOAT64",
}
# Arrays longer than this are not materialised (vocabularies): only their length is kept.
_ARRAY_KEEP_LIMIT = 1024


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    type_name: str
    shape: tuple[int, ...]
    offset: int
    n_bytes: int

    @property
    def n_elements(self) -> int:
        """Number of weights in the tensor."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class ArraySummary:
    """A long metadata array (such as a vocabulary) kept as its length only."""

    item_type: str
    length: int


@dataclass
class GGUFInfo:
    """Everything slmdesk needs to know about a model file without loading it."""

    path: Path
    size_bytes: int
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    split_files: list[Path] = field(default_factory=list)

    def _arch_key(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def architecture(self) -> str:
        """The llama.cpp architecture name, such as ``llama`` or ``gemma3``."""
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        """The model's own name from its metadata."""
        value = self.metadata.get("general.name")
        return str(value) if value else None

    @property
    def block_count(self) -> int:
        """Number of transformer blocks (layers)."""
        return int(self._arch_key("block_count") or 0)

    @property
    def context_length(self) -> int:
        """Context length the model was trained for."""
        return int(self._arch_key("context_length") or 0)

    @property
    def embedding_length(self) -> int:
        """Hidden size."""
        return int(self._arch_key("embedding_length") or 0)

    @property
    def feed_forward_length(self) -> int:
        """Width of the feed-forward layer (the first entry when it varies per layer)."""
        value = self._arch_key("feed_forward_length")
        if isinstance(value, list):
            return int(value[0]) if value else 0
        return int(value or 0)

    @property
    def head_count(self) -> int:
        """Attention heads."""
        value = self._arch_key("attention.head_count")
        if isinstance(value, list):
            return int(max(value)) if value else 0
        return int(value or 0)

    @property
    def head_count_kv(self) -> int:
        """Key/value heads (fewer than `head_count` with grouped-query attention)."""
        value = self._arch_key("attention.head_count_kv")
        if isinstance(value, list):
            return int(max(value)) if value else 0
        return int(value) if value is not None else self.head_count

    @property
    def key_length(self) -> int:
        """Size of one key head."""
        value = self._arch_key("attention.key_length")
        if value:
            return int(value)
        return self.embedding_length // self.head_count if self.head_count else 0

    @property
    def value_length(self) -> int:
        """Size of one value head."""
        value = self._arch_key("attention.value_length")
        return int(value) if value else self.key_length

    @property
    def sliding_window(self) -> int | None:
        """Window of the sliding-window attention layers, when the model has them."""
        value = self._arch_key("attention.sliding_window")
        return int(value) if value else None

    @property
    def parameters(self) -> int:
        """Total number of weights over all tensors (and all split parts)."""
        return sum(t.n_elements for t in self.tensors)

    @property
    def weights_bytes(self) -> int:
        """Bytes of tensor data (what llama.cpp maps into memory)."""
        return sum(t.n_bytes for t in self.tensors)

    @property
    def file_type(self) -> int | None:
        """``general.file_type``: llama.cpp's code for the model's quantization."""
        value = self.metadata.get("general.file_type")
        return int(value) if value is not None else None

    @property
    def quantization(self) -> str:
        """A name such as ``Q4_K_M``, from the file type or else the dominant tensor type."""
        code = self.file_type
        if code is not None:
            from gguf import LlamaFileType

            try:
                name = LlamaFileType(code).name
            except ValueError:
                name = ""
            if name and name != "GUESSED":
                return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        mix = self.tensor_type_bytes
        return max(mix, key=lambda k: mix[k]) if mix else "unknown"

    @property
    def tensor_type_bytes(self) -> dict[str, int]:
        """Bytes of tensor data per tensor type: the model's quantization mix."""
        mix: dict[str, int] = {}
        for tensor in self.tensors:
            mix[tensor.type_name] = mix.get(tensor.type_name, 0) + tensor.n_bytes
        return dict(sorted(mix.items(), key=lambda kv: -kv[1]))

    @property
    def chat_template(self) -> str | None:
        """The Jinja chat template stored in the file, if any."""
        value = self.metadata.get("tokenizer.chat_template")
        return str(value) if isinstance(value, str) and value.strip() else None

    @property
    def has_chat_template(self) -> bool:
        """Whether the file carries its own chat template."""
        return self.chat_template is not None

    @property
    def tokenizer_model(self) -> str | None:
        """Tokenizer family (``llama`` for SentencePiece, ``gpt2`` for BPE, ...)."""
        value = self.metadata.get("tokenizer.ggml.model")
        return str(value) if value else None

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary."""
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArraySummary):
            return tokens.length
        if isinstance(tokens, list):
            return len(tokens)
        return 0

    @property
    def license(self) -> str | None:
        """The license named in the metadata."""
        value = self.metadata.get("general.license") or self.metadata.get("general.license.name")
        return str(value) if value else None

    @property
    def base_model(self) -> str | None:
        """The first base model named in the metadata (for fine-tunes and conversions)."""
        for key in ("general.base_model.0.repo_url", "general.base_model.0.name"):
            value = self.metadata.get(key)
            if value:
                return str(value)
        return None

    def token_id(self, key: str) -> int | None:
        """A special token id such as ``bos``, ``eos`` or ``eot``."""
        value = self.metadata.get(f"tokenizer.ggml.{key}_token_id")
        return int(value) if value is not None else None

    def summary(self) -> dict[str, Any]:
        """The facts the CLI and the Library show, as plain JSON-ready values."""
        return {
            "path": str(self.path),
            "name": self.name,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "block_count": self.block_count,
            "context_length": self.context_length,
            "embedding_length": self.embedding_length,
            "head_count": self.head_count,
            "head_count_kv": self.head_count_kv,
            "quantization": self.quantization,
            "tensor_types": self.tensor_type_bytes,
            "size_bytes": self.size_bytes,
            "has_chat_template": self.has_chat_template,
            "tokenizer_model": self.tokenizer_model,
            "vocab_size": self.vocab_size,
            "license": self.license,
            "base_model": self.base_model,
            "gguf_version": self.version,
            "split_files": [str(p) for p in self.split_files],
        }


class _Cursor:
    """Bounds-checked little-endian reads over a memory map."""

    def __init__(self, buf: mmap.mmap | bytes, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path

    def _need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise InvalidModelError(
                f"{self.path.name} is truncated or corrupt: the {what} runs past the end of the file."
            )

    def scalar(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        self._need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", what))

    def string(self, what: str) -> str:
        length = self.u64(what)
        self._need(length, what)
        raw = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        length = self.u64(what)
        self._need(length, what)
        self.pos += length


def _value_type(code: int, path: Path, key: str) -> int:
    if code not in _TYPE_NAMES:
        raise InvalidModelError(
            f"{path.name} is corrupt: metadata key {key!r} has an unknown value type ({code})."
        )
    return code


def _read_value(cur: _Cursor, vtype: int, key: str) -> Any:
    what = f"value of {key!r}"
    if vtype == _STRING:
        return cur.string(what)
    if vtype == _ARRAY:
        item_type = _value_type(cur.u32(what), cur.path, key)
        length = cur.u64(what)
        if length > len(cur.buf):
            raise InvalidModelError(
                f"{cur.path.name} is corrupt: metadata array {key!r} claims {length:,} items."
            )
        if item_type == _ARRAY:
            raise InvalidModelError(
                f"{cur.path.name} uses nested arrays, which GGUF does not allow."
            )
        keep = length <= _ARRAY_KEEP_LIMIT
        if item_type == _STRING:
            if keep:
                return [cur.string(what) for _ in range(length)]
            for _ in range(length):
                cur.skip_string(what)
            return ArraySummary("STRING", length)
        fmt = SCALAR_FORMATS[item_type]
        size = struct.calcsize(fmt)
        cur._need(size * length, what)
        if keep:
            values = list(struct.unpack_from(f"<{length}{fmt[1]}", cur.buf, cur.pos))
            cur.pos += size * length
            return values
        cur.pos += size * length
        return ArraySummary(_TYPE_NAMES[item_type], length)
    return cur.scalar(SCALAR_FORMATS[vtype], what)


def _tensor_bytes(type_code: int, shape: tuple[int, ...], path: Path, name: str) -> tuple[str, int]:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(type_code)
    except ValueError:
        raise InvalidModelError(
            f"{path.name} uses a tensor type this version does not know ({type_code} in {name!r})."
        ) from None
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_elements = 1
    for dim in shape:
        n_elements *= dim
    if shape and shape[0] % block_size:
        raise InvalidModelError(
            f"{path.name} is corrupt: tensor {name!r} has a row size that does not fit its type."
        )
    return qtype.name, n_elements // block_size * type_size


def split_parts(path: Path) -> list[Path]:
    """All files of a split model (``-00001-of-00003.gguf``), or just ``[path]``."""
    match = _SPLIT_RE.match(path.name)
    if not match:
        return [path]
    count = int(match["count"])
    return [
        path.with_name(f"{match['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)
    ]


def split_first_part(path: Path) -> Path | None:
    """For a part of a split model, the first part; None for a plain file."""
    parts = split_parts(path)
    return parts[0] if len(parts) > 1 else None


def _read_one(path: Path) -> GGUFInfo:
    try:
        if path.is_dir():
            raise InvalidModelError(f"{path} is a folder, not a GGUF model file.")
        size = path.stat().st_size
        if size == 0:
            raise InvalidModelError(f"{path.name} is empty (0 bytes): it is not a GGUF model.")
        with open(path, "rb") as handle:
            buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise InvalidModelError(f"{path} does not exist.") from None
    except PermissionError:
        raise InvalidModelError(f"{path} cannot be read: permission denied.") from None
    except IsADirectoryError:
        raise InvalidModelError(f"{path} is a folder, not a GGUF model file.") from None
    except OSError as exc:
        raise InvalidModelError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    try:
        return _parse(buf, path, size)
    finally:
        buf.close()


def _parse(buf: mmap.mmap | bytes, path: Path, size: int) -> GGUFInfo:
    cur = _Cursor(buf, path)
    if size < 24 or bytes(buf[:4]) != GGUF_MAGIC:
        raise InvalidModelError(
            f"{path.name} is not a GGUF model file (it does not start with 'GGUF')."
        )
    cur.pos = 4
    version = cur.u32("header")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidModelError(
            f"{path.name} is GGUF version {version}; slmdesk reads versions 2 and 3."
        )
    n_tensors = cur.u64("header")
    n_kv = cur.u64("header")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise InvalidModelError(
            f"{path.name} is corrupt: its header claims {n_tensors:,} tensors and {n_kv:,} metadata keys."
        )
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string("metadata key")
        vtype = _value_type(cur.u32(f"type of {key!r}"), path, key)
        if key in metadata:
            raise InvalidModelError(f"{path.name} is corrupt: metadata key {key!r} appears twice.")
        metadata[key] = _read_value(cur, vtype, key)
    raw_tensors: list[tuple[str, int, tuple[int, ...], int]] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = cur.string("tensor table")
        n_dims = cur.u32("tensor table")
        if not 1 <= n_dims <= MAX_DIMS:
            raise InvalidModelError(
                f"{path.name} is corrupt: tensor {name!r} has {n_dims} dimensions."
            )
        shape = tuple(cur.u64("tensor table") for _ in range(n_dims))
        type_code = cur.u32("tensor table")
        offset = cur.u64("tensor table")
        if name in names:
            raise InvalidModelError(f"{path.name} is corrupt: tensor {name!r} appears twice.")
        names.add(name)
        raw_tensors.append((name, type_code, shape, offset))
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT) or DEFAULT_ALIGNMENT)
    if alignment <= 0 or alignment & (alignment - 1):
        raise InvalidModelError(
            f"{path.name} is corrupt: alignment {alignment} is not a power of two."
        )
    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    tensors: list[TensorInfo] = []
    for name, type_code, shape, offset in raw_tensors:
        type_name, n_bytes = _tensor_bytes(type_code, shape, path, name)
        end = data_offset + offset + n_bytes
        if end > size:
            missing = end - size
            raise InvalidModelError(
                f"{path.name} is truncated: tensor {name!r} needs {missing:,} more bytes than the "
                "file has (an incomplete download or copy?)."
            )
        tensors.append(TensorInfo(name, type_name, shape, offset, n_bytes))
    return GGUFInfo(
        path=path,
        size_bytes=size,
        version=version,
        metadata=metadata,
        tensors=tensors,
        data_offset=data_offset,
    )


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read and validate a GGUF file (all parts of a split model).

    Args:
        path: the model file; for a split model any part, the first is read for metadata.

    Returns:
        The model's facts. For split models, tensors and size cover every part.

    Raises:
        InvalidModelError: the file is missing, unreadable, not GGUF, or damaged.
    """
    path = Path(path).expanduser()
    parts = split_parts(path)
    if len(parts) == 1:
        return _read_one(path)
    missing = [p.name for p in parts if not p.exists()]
    if missing:
        raise InvalidModelError(
            f"{path.name} is one part of a split model and {len(missing)} part(s) are missing: "
            f"{', '.join(missing[:3])}."
        )
    infos = [_read_one(p) for p in parts]
    first = infos[0]
    first.path = parts[0]
    first.split_files = parts
    first.size_bytes = sum(i.size_bytes for i in infos)
    first.tensors = [t for i in infos for t in i.tensors]
    return first


def read_gguf_header(data: bytes, name: str, size_bytes: int) -> GGUFInfo:
    """Read the facts of a GGUF file that is elsewhere (on the Hub) from its first bytes.

    Args:
        data: the start of the file: the header, the metadata and the tensor table.
        name: the file's name, for messages.
        size_bytes: the whole file's size, to check the tensor table against.

    Raises:
        InvalidModelError: not GGUF, damaged, or ``data`` ends before the tensor table does
            (then a longer start may succeed).
    """
    return _parse(data, Path(name), size_bytes)
