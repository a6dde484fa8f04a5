"""Read and validate GGUF model files, fast and safely.

Only the header, the metadata and the tensor table are read, never the weights: a 250 MB model
with a 262k-token vocabulary is inspected in well under a second (the generic reader in the
``gguf`` package parses every vocabulary string into its own array and takes tens of seconds).
The value-type and quantization tables come from the ``gguf`` package.

The file is treated as hostile input: every count and length it claims is compared with the
bytes left in the file *before* anything is allocated, long strings are skipped rather than
decoded, and every message quotes text from the file through `printable` (short, no control
characters or terminal escape codes). Validation catches what would crash or mislead llama.cpp —
wrong magic, unsupported version, absurd counts, strings or arrays running past the end,
duplicate keys or tensor names, misplaced or out-of-file tensor data, values of the wrong type for
known keys, a damaged vocabulary — and reports each as one human sentence in an
`InvalidModelError`. What llama.cpp itself would abort on is checked by `gguf_checks`, which
`read_gguf_info` runs on every file it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_checks import check_loadable
from slmdesk.models.gguf_memo import read_remembered
from slmdesk.models.gguf_text import MAX_MESSAGE_CHARS, invalid, one_sentence, printable, quoted

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_TENSORS = 1_000_000
MAX_KV = 100_000
MAX_DIMS = 4
MAX_TENSOR_NAME_BYTES = 63  # llama.cpp's GGML_MAX_NAME (64) including the terminating NUL
MAX_KEY_BYTES = 65_535  # the GGUF specification's limit for a key
# String values longer than this are skipped (only their length is kept): no real metadata text
# (chat templates, licenses) comes close, and decoding a damaged length could cost gigabytes.
MAX_KEPT_STRING_BYTES = 1 << 20
# Items of short string arrays are kept only up to this size; vocabulary tokens may not be longer
# (real ones are at most a few hundred bytes), nor the whole vocabulary's text exceed the total.
MAX_KEPT_ITEM_BYTES = 64 * 1024
MAX_TOKEN_BYTES = 64 * 1024
MAX_VOCABULARY_BYTES = 64 * 1024 * 1024
# The smallest encodings of one metadata entry (key length, 1-byte key, type, 1-byte value) and
# one tensor-table entry (name length, 1-byte name, dims count, one dim, type, offset).
_MIN_KV_BYTES = 8 + 1 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8
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
# Exceptions a parsing bug could raise on hostile bytes (see `_read_one`).
_PARSER_SLIPS = (
    ValueError,
    TypeError,
    OverflowError,
    struct.error,
    IndexError,
    KeyError,
    UnicodeError,
    MemoryError,
    RecursionError,
)
# Arrays longer than this are not materialised (vocabularies): only their length is kept.
_ARRAY_KEEP_LIMIT = 1024
TOKENS_KEY = "tokenizer.ggml.tokens"

# The kind of value known keys must hold ("int", "float", "str"; "int|array" also takes a
# per-layer array of whole numbers). Keys under the architecture's prefix are listed by suffix.
_GENERAL_KINDS: dict[str, str] = {
    "general.architecture": "str",
    "general.name": "str",
    "general.file_type": "int",
    "general.alignment": "int",
    "general.quantization_version": "int",
    "tokenizer.ggml.model": "str",
    "tokenizer.ggml.pre": "str",
    "tokenizer.chat_template": "str",
    "tokenizer.ggml.bos_token_id": "int",
    "tokenizer.ggml.eos_token_id": "int",
    "tokenizer.ggml.eot_token_id": "int",
    "tokenizer.ggml.unknown_token_id": "int",
    "tokenizer.ggml.padding_token_id": "int",
    TOKENS_KEY: "str-array",
    "tokenizer.ggml.scores": "float-array",
    "tokenizer.ggml.token_type": "int-array",
    "tokenizer.ggml.merges": "str-array",
}
_ARCH_KINDS: dict[str, str] = {
    "context_length": "int",
    "embedding_length": "int",
    "block_count": "int",
    "feed_forward_length": "int|array",
    "expert_count": "int",
    "expert_used_count": "int|array",
    "attention.head_count": "int|array",
    "attention.head_count_kv": "int|array",
    "attention.key_length": "int",
    "attention.value_length": "int",
    "attention.sliding_window": "int",
    "attention.layer_norm_rms_epsilon": "float",
    "attention.layer_norm_epsilon": "float",
    "rope.dimension_count": "int",
    "rope.freq_base": "float",
    "rope.scaling.type": "str",
    "rope.scaling.factor": "float",
}
_KIND_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "int|array": "a whole number or a list of them",
    "str-array": "a list of texts",
    "float-array": "a list of numbers",
    "int-array": "a list of whole numbers",
}


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


@dataclass(frozen=True)
class SkippedText:
    """A string value too long to keep (see `MAX_KEPT_STRING_BYTES`): only its length."""

    length: int


@dataclass(frozen=True)
class VocabularyFacts:
    """What llama.cpp will make of the vocabulary's token texts, found while reading them.

    llama.cpp cuts each token at its first NUL byte and names an empty one ``[EMPTY_<i>]``; two
    tokens that end up equal make it abort. ``duplicate`` is the first such pair of indexes,
    ``not_utf8`` the first token that is not valid UTF-8 (a damaged file), ``byte_tokens`` how
    many distinct ``<0xXX>`` byte tokens the vocabulary has.
    """

    duplicate: tuple[int, int] | None = None
    not_utf8: int | None = None
    byte_tokens: int = 0


@dataclass
class GGUFInfo:
    """Everything slmdesk needs to know about a model file without loading it.

    The typed properties never raise on a damaged or hostile file: a value of the wrong type
    reads as absent (0 or None), so the summary and the memory estimate always work.
    """

    path: Path
    size_bytes: int
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    split_files: list[Path] = field(default_factory=list)
    alignment: int = DEFAULT_ALIGNMENT
    vocabulary: VocabularyFacts = field(default_factory=VocabularyFacts)

    def _arch_key(self, suffix: str) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}")

    def _count(self, suffix: str, pick: str = "first") -> int:
        """A non-negative whole number from ``<arch>.<suffix>``; 0 when absent or mistyped."""
        return _as_count(self._arch_key(suffix), pick)

    @property
    def architecture(self) -> str:
        """The llama.cpp architecture name, such as ``llama`` or ``gemma3``."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) and value else "unknown"

    @property
    def name(self) -> str | None:
        """The model's own name from its metadata."""
        return _text(self.metadata.get("general.name"))

    @property
    def block_count(self) -> int:
        """Number of transformer blocks (layers)."""
        return self._count("block_count")

    @property
    def context_length(self) -> int:
        """Context length the model was trained for."""
        return self._count("context_length")

    @property
    def embedding_length(self) -> int:
        """Hidden size."""
        return self._count("embedding_length")

    @property
    def feed_forward_length(self) -> int:
        """Width of the feed-forward layer (the first entry when it varies per layer)."""
        return self._count("feed_forward_length")

    @property
    def head_count(self) -> int:
        """Attention heads (the most of any layer when it varies)."""
        return self._count("attention.head_count", "max")

    @property
    def head_count_kv(self) -> int:
        """Key/value heads (fewer than `head_count` with grouped-query attention)."""
        if self._arch_key("attention.head_count_kv") is None:
            return self.head_count
        return self._count("attention.head_count_kv", "max")

    @property
    def key_length(self) -> int:
        """Size of one key head."""
        value = self._count("attention.key_length")
        if value:
            return value
        return self.embedding_length // self.head_count if self.head_count else 0

    @property
    def value_length(self) -> int:
        """Size of one value head."""
        return self._count("attention.value_length") or self.key_length

    @property
    def sliding_window(self) -> int | None:
        """Window of the sliding-window attention layers, when the model has them."""
        return self._count("attention.sliding_window") or None

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
        return value if isinstance(value, int) and not isinstance(value, bool) else None

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
        return value if isinstance(value, str) and value.strip() else None

    @property
    def has_chat_template(self) -> bool:
        """Whether the file carries its own chat template."""
        return self.chat_template is not None

    @property
    def tokenizer_model(self) -> str | None:
        """Tokenizer family (``llama`` for SentencePiece, ``gpt2`` for BPE, ...)."""
        return _text(self.metadata.get("tokenizer.ggml.model"))

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary."""
        tokens = self.metadata.get(TOKENS_KEY)
        if isinstance(tokens, ArraySummary):
            return tokens.length
        if isinstance(tokens, list):
            return len(tokens)
        return 0

    @property
    def license(self) -> str | None:
        """The license named in the metadata."""
        return _text(self.metadata.get("general.license")) or _text(
            self.metadata.get("general.license.name")
        )

    @property
    def base_model(self) -> str | None:
        """The first base model named in the metadata (for fine-tunes and conversions)."""
        for key in ("general.base_model.0.repo_url", "general.base_model.0.name"):
            value = _text(self.metadata.get(key))
            if value:
                return value
        return None

    def token_id(self, key: str) -> int | None:
        """A special token id such as ``bos``, ``eos`` or ``eot``."""
        value = self.metadata.get(f"tokenizer.ggml.{key}_token_id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def summary(self) -> dict[str, Any]:
        """The facts the CLI and the Library show, as plain JSON-ready values.

        Texts from the file are passed through `printable` (they end up in terminals and
        widgets); the architecture is shown as llama.cpp will read it.
        """

        def shown(value: str | None, limit: int = 200) -> str | None:
            return printable(value, limit) if value is not None else None

        return {
            "path": str(self.path),
            "name": shown(self.name),
            "architecture": printable(self.architecture, 100),
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
            "tokenizer_model": shown(self.tokenizer_model, 100),
            "vocab_size": self.vocab_size,
            "license": shown(self.license),
            "base_model": shown(self.base_model),
            "gguf_version": self.version,
            "split_files": [str(p) for p in self.split_files],
        }


def _text(value: Any) -> str | None:
    """A metadata string, or None when absent, empty or not a string."""
    return value if isinstance(value, str) and value else None


def _as_count(value: Any, pick: str = "first") -> int:
    """``value`` as a non-negative whole number; lists give their first (or largest) entry."""
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        if not numbers:
            return 0
        value = max(numbers) if pick == "max" else numbers[0]
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


class _Cursor:
    """Bounds-checked little-endian reads over a memory map.

    Every read goes through `view`, so a subclass can serve the bytes from elsewhere (the Hub,
    in ranges: `slmdesk.models.gguf_ranges`) and skip what it need not read; ``contiguous`` says
    whether ``buf`` holds every byte, which the vocabulary's fast loop relies on.
    """

    contiguous = True

    def __init__(self, buf: mmap.mmap | bytes, path: Path) -> None:
        self.buf = buf
        self.pos = 0
        self.path = path
        self.size = len(buf)
        self.name = printable(path.name, 80)

    @property
    def left(self) -> int:
        """Bytes between the read position and the end of the file."""
        return self.size - self.pos

    def corrupt(self, detail: str) -> InvalidModelError:
        """``<file> is corrupt: <detail>``, bounded."""
        return invalid(f"{self.name} is corrupt: {detail}")

    def need(self, n: int, what: str) -> None:
        """Refuse to read ``n`` bytes that the file does not have."""
        if n < 0 or n > self.left:
            raise invalid(
                f"{self.name} is truncated or corrupt: the {what} runs past the end of the file."
            )

    def view(self, n: int) -> tuple[Any, int]:
        """A buffer holding the ``n`` bytes at the read position, and their index in it."""
        return self.buf, self.pos

    def peek_u64(self) -> int:
        """The 64-bit number at the read position without moving (0 past the end)."""
        if self.left < 8:
            return 0
        buf, index = self.view(8)
        return int(struct.unpack_from("<Q", buf, index)[0])

    def skip(self, n: int, what: str) -> None:
        """Move past ``n`` bytes that the file has, without reading them."""
        self.need(n, what)
        self.pos += n

    def skip_string_array(self, key: str, length: int, what: str) -> bool:
        """Move past a long array of strings without reading it, when the cursor can.

        Only a cursor that reads in ranges can (it finds where the array ends); this one reads
        every item, so it returns False.
        """
        return False

    def scalar(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(fmt)
        self.need(size, what)
        buf, index = self.view(size)
        (value,) = struct.unpack_from(fmt, buf, index)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", what))

    def raw_string(self, what: str, limit: int) -> bytes:
        """A length-prefixed byte string, refused before reading if longer than ``limit``."""
        length = self.u64(what)
        if length > limit:
            self.need(length, what)  # past the end: say "truncated", the likelier story
            raise self.corrupt(f"the {what} claims {length:,} bytes (at most {limit:,} expected).")
        self.need(length, what)
        buf, index = self.view(length)
        raw = bytes(buf[index : index + length])
        self.pos += length
        return raw

    def raw_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes (which must exist), moving past them."""
        buf, index = self.view(n)
        raw = bytes(buf[index : index + n])
        self.pos += n
        return raw

    def string(self, what: str, limit: int) -> str:
        return self.raw_string(what, limit).decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> int:
        length = self.u64(what)
        self.need(length, what)
        self.pos += length
        return length


def _value_type(cur: _Cursor, code: int, key: str) -> int:
    if code not in _TYPE_NAMES:
        raise cur.corrupt(f"metadata key {quoted(key)} has an unknown value type ({code}).")
    return code


def _read_value(cur: _Cursor, vtype: int, key: str) -> Any:
    what = f"value of {quoted(key)}"
    if vtype == _STRING:
        length = cur.peek_u64()
        if length > MAX_KEPT_STRING_BYTES:
            return SkippedText(cur.skip_string(what))
        return cur.string(what, MAX_KEPT_STRING_BYTES)
    if vtype == _ARRAY:
        item_type = _value_type(cur, cur.u32(what), key)
        length = cur.u64(what)
        if item_type == _ARRAY:
            raise cur.corrupt(f"metadata key {quoted(key)} holds nested arrays.")
        item_min = 8 if item_type == _STRING else struct.calcsize(SCALAR_FORMATS[item_type])
        if length > cur.left // item_min:
            raise invalid(
                f"{cur.name} is truncated or corrupt: metadata array {quoted(key)} claims "
                f"{length:,} items, more than the {cur.left:,} bytes left in the file can hold."
            )
        if item_type == _STRING:
            if cur.skip_string_array(key, length, what):
                summary = ArraySummary("STRING", length)
                return (summary, VocabularyFacts()) if key == TOKENS_KEY else summary
            if key == TOKENS_KEY:
                return _read_tokens(cur, length, what)
            items: list[str] | None = [] if length <= _ARRAY_KEEP_LIMIT else None
            for _ in range(length):
                size = cur.peek_u64()
                if items is not None and size <= MAX_KEPT_ITEM_BYTES:
                    items.append(cur.string(what, MAX_KEPT_ITEM_BYTES))
                else:
                    items = None  # a long item: keep only the length, never decode it
                    cur.skip_string(what)
            return items if items is not None else ArraySummary("STRING", length)
        fmt = SCALAR_FORMATS[item_type]
        size = struct.calcsize(fmt)
        cur.need(size * length, what)
        if length <= _ARRAY_KEEP_LIMIT:
            buf, index = cur.view(size * length)
            values = list(struct.unpack_from(f"<{length}{fmt[1]}", buf, index))
            cur.pos += size * length
            return values
        cur.skip(size * length, what)
        return ArraySummary(_TYPE_NAMES[item_type], length)
    return cur.scalar(SCALAR_FORMATS[vtype], what)


_BYTE_TOKEN_RE = re.compile(rb"<0x[0-9A-F]{2}>")


def _read_tokens(cur: _Cursor, length: int, what: str) -> tuple[Any, VocabularyFacts]:
    """Read the vocabulary's texts, checking them as llama.cpp will see them.

    Returns the value to store (the list when short, else its summary) and the facts found.
    Written for speed (a 262k-token vocabulary is read on every inspect): one tight loop
    collects the texts, and the checks then run on the whole list at once.
    """
    if not cur.contiguous:
        words = _read_token_words_stepwise(cur, length, what)
    else:
        words = _read_token_words(cur, length, what)
    facts = _vocabulary_facts(words)
    if length <= _ARRAY_KEEP_LIMIT:
        return [w.decode("utf-8", errors="replace") for w in words], facts
    return ArraySummary("STRING", length), facts


def _read_token_words(cur: _Cursor, length: int, what: str) -> list[bytes]:
    """The vocabulary's texts from a buffer that holds them all (one tight loop)."""
    buf, unpack, end = cur.buf, struct.Struct("<Q").unpack_from, cur.size
    pos = cur.pos
    words: list[bytes] = []
    append = words.append
    total = 0
    for index in range(length):
        if pos + 8 > end:
            cur.pos = pos
            cur.need(8, what)
        start = pos + 8
        size = unpack(buf, pos)[0]
        pos = start + size
        if pos > end:
            cur.pos = start
            cur.need(size, what)
        total += size
        if size > MAX_TOKEN_BYTES or total > MAX_VOCABULARY_BYTES:
            raise _token_too_long(cur, index, size, total)
        append(buf[start:pos])
    cur.pos = pos
    return words


def _read_token_words_stepwise(cur: _Cursor, length: int, what: str) -> list[bytes]:
    """The same texts, with the same limits, through the cursor's reads (bytes from elsewhere)."""
    words: list[bytes] = []
    total = 0
    for index in range(length):
        size = cur.u64(what)
        cur.need(size, what)
        total += size
        if size > MAX_TOKEN_BYTES or total > MAX_VOCABULARY_BYTES:
            raise _token_too_long(cur, index, size, total)
        buf, start = cur.view(size)
        words.append(bytes(buf[start : start + size]))
        cur.pos += size
    return words


def _token_too_long(cur: _Cursor, index: int, size: int, total: int) -> InvalidModelError:
    return cur.corrupt(
        f"vocabulary token {index:,} claims {size:,} bytes (the vocabulary's text would "
        f"reach {total:,} bytes)."
    )


def _vocabulary_facts(words: list[bytes]) -> VocabularyFacts:
    """Duplicates (as llama.cpp names tokens), invalid UTF-8 and byte tokens in ``words``."""
    joined = b"\n".join(words)
    named = words
    if b"\0" in joined or b"" in words:
        named = [w.split(b"\0", 1)[0] or f"[EMPTY_{i}]".encode() for i, w in enumerate(words)]
    duplicate = None
    if len(set(named)) != len(named):
        first_seen: dict[bytes, int] = {}
        for index, word in enumerate(named):
            first = first_seen.setdefault(word, index)
            if first != index:
                duplicate = (first, index)
                break
    not_utf8 = None
    try:
        joined.decode("utf-8")
    except UnicodeDecodeError:
        for index, word in enumerate(words):
            try:
                word.decode("utf-8")
            except UnicodeDecodeError:
                not_utf8 = index
                break
    byte_tokens = {w for w in words if len(w) == 6 and w[:3] == b"<0x"}
    count = sum(1 for w in byte_tokens if _BYTE_TOKEN_RE.fullmatch(w))
    return VocabularyFacts(duplicate, not_utf8, count)


def _check_kinds(cur: _Cursor, metadata: dict[str, Any]) -> None:
    """Refuse values of the wrong type for the keys slmdesk and llama.cpp rely on."""
    arch = metadata.get("general.architecture")
    if "general.architecture" in metadata and not isinstance(arch, str):
        raise cur.corrupt("'general.architecture' should be text.")
    kinds = dict(_GENERAL_KINDS)
    if isinstance(arch, str):
        kinds.update({f"{arch}.{suffix}": kind for suffix, kind in _ARCH_KINDS.items()})
    for key, kind in kinds.items():
        if key in metadata and not _is_kind(metadata[key], kind):
            raise cur.corrupt(
                f"{quoted(key)} should hold {_KIND_WORDS[kind]} but holds "
                f"{_describe(metadata[key])}."
            )


def _is_kind(value: Any, kind: str) -> bool:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if kind == "int":
        return is_int(value)
    if kind == "float":
        return isinstance(value, float | int) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str | SkippedText)
    if kind == "int|array":
        return (
            is_int(value)
            or (isinstance(value, list) and all(is_int(v) for v in value))
            or (isinstance(value, ArraySummary) and value.item_type not in ("STRING", "BOOL"))
        )
    if kind == "str-array":
        return (isinstance(value, list) and all(isinstance(v, str) for v in value)) or (
            isinstance(value, ArraySummary) and value.item_type == "STRING"
        )
    if kind == "float-array":
        return (
            isinstance(value, list)
            and all(isinstance(v, float | int) and not isinstance(v, bool) for v in value)
        ) or (
            isinstance(value, ArraySummary) and value.item_type in ("FLOAT32", "FLOAT64", "INT32")
        )
    if kind == "int-array":
        return (isinstance(value, list) and all(is_int(v) for v in value)) or (
            isinstance(value, ArraySummary)
            and value.item_type not in ("STRING", "BOOL", "FLOAT32", "FLOAT64")
        )
    return True


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str | SkippedText):
        return "text"
    if isinstance(value, float):
        return "a fraction" if math.isfinite(value) else "not-a-number"
    if isinstance(value, int):
        return "a whole number"
    return "a list"


def _tensor_bytes(
    cur: _Cursor, type_code: int, shape: tuple[int, ...], name: str
) -> tuple[str, int]:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        qtype = GGMLQuantizationType(type_code)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise invalid(
            f"{cur.name} uses a tensor type this version does not know ({type_code} in "
            f"{quoted(name)})."
        ) from None
    if shape[0] % block_size:
        raise cur.corrupt(f"tensor {quoted(name)} has a row size that does not fit its type.")
    n_elements = 1
    for dim in shape:
        n_elements *= dim
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
    shown = printable(str(path), 160)
    try:
        if path.is_dir():
            raise invalid(f"{shown} is a folder, not a GGUF model file.")
        size = path.stat().st_size
        if size == 0:
            raise invalid(f"{printable(path.name, 80)} is empty (0 bytes): it is not a GGUF model.")
        with open(path, "rb") as handle:
            buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise invalid(f"{shown} does not exist.") from None
    except PermissionError:
        raise invalid(f"{shown} cannot be read: permission denied.") from None
    except IsADirectoryError:
        raise invalid(f"{shown} is a folder, not a GGUF model file.") from None
    except OSError as exc:
        raise invalid(f"{shown} cannot be read: {exc.strerror or exc}.") from None
    try:
        return _parse(buf, path, size)
    except _PARSER_SLIPS as exc:
        # A last guard: every damaged file the fuzzer found is refused by a check above, but a
        # bug in one must still reach the user as a sentence. The cause is kept for the log
        # (and for the fuzz tests, which count these as failures).
        raise invalid(
            f"{printable(path.name, 80)} is corrupt: its header could not be read "
            f"({type(exc).__name__})."
        ) from exc
    finally:
        buf.close()


def _copy(info: GGUFInfo) -> GGUFInfo:
    """A copy a caller may change without changing the remembered one (`gguf_memo`)."""
    return dataclasses.replace(
        info,
        metadata=dict(info.metadata),
        tensors=list(info.tensors),
        split_files=list(info.split_files),
    )


def _parse(buf: mmap.mmap | bytes, path: Path, size: int) -> GGUFInfo:
    return parse_with_cursor(_Cursor(buf, path), size)


def _read_preamble(cur: _Cursor, size: int) -> tuple[int, int, int]:
    """Magic, version and the two counts, checked against the file's size."""
    if size < 24 or cur.left < 4 or cur.raw_bytes(4) != GGUF_MAGIC:
        raise invalid(f"{cur.name} is not a GGUF model file (it does not start with 'GGUF').")
    version = cur.u32("header")
    if version not in SUPPORTED_VERSIONS:
        raise invalid(f"{cur.name} is GGUF version {version}; slmdesk reads versions 2 and 3.")
    n_tensors = cur.u64("header")
    n_kv = cur.u64("header")
    if (
        n_tensors > MAX_TENSORS
        or n_kv > MAX_KV
        or n_tensors * _MIN_TENSOR_BYTES + n_kv * _MIN_KV_BYTES > cur.left
    ):
        raise invalid(
            f"{cur.name} is truncated or corrupt: its header claims {n_tensors:,} tensors and "
            f"{n_kv:,} metadata keys, more than its {size:,} bytes can hold."
        )
    return version, n_tensors, n_kv


def _read_key(cur: _Cursor) -> tuple[str, int]:
    """One metadata key and its value type."""
    key = cur.string("metadata key", MAX_KEY_BYTES)
    if not key:
        raise cur.corrupt("a metadata key is empty.")
    return key, _value_type(cur, cur.u32(f"type of {quoted(key)}"), key)


def read_token_texts(path: str | os.PathLike[str]) -> list[bytes]:
    """Every vocabulary token's bytes, in id order, with the reader's bounds (the ``gguf``
    package's reader takes tens of seconds on a 262k-token vocabulary; this, a tenth of one).

    Raises:
        InvalidModelError: not GGUF, damaged, or without a vocabulary.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            buf = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise invalid(f"{printable(str(path), 160)} cannot be read: {exc}.") from None
    try:
        cur = _Cursor(buf, path)
        _version, _n_tensors, n_kv = _read_preamble(cur, len(buf))
        for _ in range(n_kv):
            key, vtype = _read_key(cur)
            if key == TOKENS_KEY and vtype == _ARRAY and cur.u32(key) == _STRING:
                length = cur.u64(key)
                if length > cur.left // 8:
                    raise cur.corrupt(f"its vocabulary claims {length:,} tokens.")
                return _read_token_words(cur, length, key)  # mmap slices are bytes
            if key == TOKENS_KEY:
                break
            _read_value(cur, vtype, key)
    except _PARSER_SLIPS as exc:
        raise invalid(f"{printable(path.name, 80)} is corrupt ({type(exc).__name__}).") from exc
    finally:
        buf.close()
    raise invalid(f"{printable(path.name, 80)} has no vocabulary (no {TOKENS_KEY}).")


def parse_with_cursor(cur: _Cursor, size: int) -> GGUFInfo:
    """Read and validate a GGUF header through ``cur`` (``size``: the whole file's bytes).

    The one parser behind local files, remote prefixes and range reads (`gguf_ranges`), so
    every way of reading a header applies the same rules.
    """
    path = cur.path
    version, n_tensors, n_kv = _read_preamble(cur, size)
    metadata: dict[str, Any] = {}
    vocabulary = VocabularyFacts()
    for _ in range(n_kv):
        key, vtype = _read_key(cur)
        if key in metadata:
            raise cur.corrupt(f"metadata key {quoted(key)} appears twice.")
        if key == "general.alignment" and vtype != 4:
            raise cur.corrupt("'general.alignment' is not stored as a 32-bit unsigned number.")
        value = _read_value(cur, vtype, key)
        if key == TOKENS_KEY and isinstance(value, tuple):
            value, vocabulary = value
        metadata[key] = value
    _check_kinds(cur, metadata)
    raw_tensors: list[tuple[str, int, tuple[int, ...], int]] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        raw_name = cur.raw_string("tensor name", MAX_TENSOR_NAME_BYTES)
        name = raw_name.decode("utf-8", errors="replace")
        if not raw_name or b"\0" in raw_name:
            raise cur.corrupt(f"tensor name {quoted(name)} is empty or holds a NUL byte.")
        n_dims = cur.u32("tensor table")
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.corrupt(f"tensor {quoted(name)} has {n_dims:,} dimensions.")
        shape = tuple(cur.u64("tensor table") for _ in range(n_dims))
        if min(shape) < 1 or max(shape) >= 1 << 62:
            raise cur.corrupt(f"tensor {quoted(name)} has an impossible shape.")
        type_code = cur.u32("tensor table")
        offset = cur.u64("tensor table")
        if name in names:
            raise cur.corrupt(f"tensor {quoted(name)} appears twice.")
        names.add(name)
        raw_tensors.append((name, type_code, shape, offset))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise cur.corrupt(f"alignment {printable(alignment, 30)} is not a power of two.")
    if alignment > 1 << 20:
        raise cur.corrupt(f"alignment {alignment:,} is absurdly large.")
    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    tensors: list[TensorInfo] = []
    expected_offset = 0
    for name, type_code, shape, offset in raw_tensors:
        type_name, n_bytes = _tensor_bytes(cur, type_code, shape, name)
        if offset != expected_offset:
            raise cur.corrupt(
                f"tensor {quoted(name)} does not start where the one before it ends (its data "
                "offset is damaged, or a tensor's type or shape is)."
            )
        end = data_offset + offset + n_bytes
        if end > size:
            missing = end - size
            raise invalid(
                f"{cur.name} is truncated: tensor {quoted(name)} needs {missing:,} more bytes than "
                "the file has (an incomplete download or copy?)."
            )
        expected_offset = offset + (n_bytes + alignment - 1) // alignment * alignment
        tensors.append(TensorInfo(name, type_name, shape, offset, n_bytes))
    return GGUFInfo(
        path=path,
        size_bytes=size,
        version=version,
        metadata=metadata,
        tensors=tensors,
        data_offset=data_offset,
        alignment=alignment,
        vocabulary=vocabulary,
    )


HeaderCursor = _Cursor  # the public name, for cursors that read elsewhere (`gguf_ranges`)


def read_gguf_info(path: str | os.PathLike[str], check: bool = True) -> GGUFInfo:
    """Read and validate a GGUF file (all parts of a split model).

    Args:
        path: the model file; for a split model any part, the first is read for metadata.
        check: also refuse what llama.cpp would abort on (`gguf_checks.check_loadable`); only
            tools that repair or study damaged files turn this off.

    Returns:
        The model's facts. For split models, tensors and size cover every part.

    Raises:
        InvalidModelError: the file is missing, unreadable, not GGUF, damaged, or would crash
            llama.cpp; the message is one bounded sentence.
    """
    path = Path(path).expanduser()
    parts = split_parts(path)
    if len(parts) == 1:
        info = read_remembered(path, _read_one, _copy)
    else:
        missing = [printable(p.name, 80) for p in parts if not p.exists()]
        if missing:
            raise invalid(
                f"{printable(path.name, 80)} is one part of a split model and {len(missing)} "
                f"part(s) are missing: {', '.join(missing[:3])}."
            )
        infos = [read_remembered(p, _read_one, _copy) for p in parts]
        info = infos[0]
        info.path = parts[0]
        info.split_files = parts
        info.size_bytes = sum(i.size_bytes for i in infos)
        info.tensors = [t for i in infos for t in i.tensors]
    if check:
        check_loadable(info)
    return info


def read_tensor_count(path: str | os.PathLike[str]) -> int:
    """The tensor count a GGUF file's first 24 bytes declare, for a file slmdesk has just
    written through llama.cpp (a whole read costs 0.2 s on a 262k-token vocabulary; the file is
    read whole when it is added to the library).

    Raises:
        InvalidModelError: the file is missing or does not start like a GGUF file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(24)
    except OSError as exc:
        raise invalid(
            f"{printable(str(path), 160)} cannot be read: {exc.strerror or exc}."
        ) from None
    if len(start) < 24 or start[:4] != GGUF_MAGIC:
        raise invalid(f"{printable(path.name, 80)} is not a GGUF model file.")
    version, n_tensors = struct.unpack_from("<IQ", start, 4)
    if version not in SUPPORTED_VERSIONS or n_tensors > MAX_TENSORS:
        raise invalid(f"{printable(path.name, 80)} has a damaged GGUF header.")
    return int(n_tensors)


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


__all__ = [
    "MAX_MESSAGE_CHARS",
    "ArraySummary",
    "GGUFInfo",
    "HeaderCursor",
    "SkippedText",
    "TensorInfo",
    "VocabularyFacts",
    "invalid",
    "one_sentence",
    "parse_with_cursor",
    "printable",
    "quoted",
    "read_gguf_header",
    "read_gguf_info",
    "read_tensor_count",
    "read_token_texts",
    "split_first_part",
    "split_parts",
]
