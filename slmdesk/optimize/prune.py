"""Rules for removing transformer blocks, and the metadata fix-up a pruned GGUF needs.

llama.cpp's ``llama_model_quantize`` prunes with ``prune_layers``: it drops the tensors of the
listed blocks, renumbers the rest (``blk.7`` becomes ``blk.6`` ...) and rewrites
``<arch>.block_count``. It leaves two things wrong that would break or silently change the model:

1. Per-layer metadata arrays (head counts, feed-forward widths, ... stored as one value per
   block) keep their old length, and llama.cpp refuses to load a model whose array length is not
   the new block count.
2. Architectures with sliding-window attention decide which layers are local by *index*: for
   gemma3 ``hparams.set_swa_pattern(6)`` makes layer ``il`` local when ``il % 6 < 5``, unless the
   file has an explicit per-layer array ``gemma3.attention.sliding_window_pattern`` (llama.cpp's
   ``load_swa_pattern`` reads that array first; a bool/int per layer, true = sliding window).
   Dropping block 3 would shift every later block's attention type. We write the explicit array
   so every kept block keeps the attention type it was trained with.

Only architectures whose blocks are interchangeable by index (or whose index rule we can pin with
the explicit array) may be pruned; others are refused with a reason.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGUFValueType

from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import DEFAULT_ALIGNMENT, SCALAR_FORMATS, GGUFInfo

# Architectures that can be pruned. The value is llama.cpp's default sliding-window pattern for
# the architecture (argument of load_swa_pattern in src/models/<arch>.cpp), or None when its
# attention does not depend on the layer index.
PRUNABLE_ARCHS: dict[str, int | None] = {
    "llama": None,
    "qwen2": None,
    "qwen3": None,
    "qwen2moe": None,
    "qwen3moe": None,
    "phi3": None,  # every layer uses the same (sliding or not) attention
    "gemma": None,
    "gemma2": 2,
    "gemma3": 6,
    "cohere2": 4,
    "olmo": None,
    "olmo2": 4,
    "granite": None,
    "stablelm": None,
    "starcoder2": None,
    "internlm2": None,
    "exaone": None,
    "gpt2": None,
}
_WHY_NOT: dict[str, str] = {
    "smollm3": "it skips rotary embeddings on every 4th layer by index",
    "llama4": "it alternates dense and mixture-of-experts layers by index",
    "gemma3n": "its layers share key/value caches and per-layer embeddings",
}


@dataclass(frozen=True)
class PruneCheck:
    """Whether a model may be pruned, and why not."""

    allowed: bool
    reason: str = ""


def check_prunable(info: GGUFInfo) -> PruneCheck:
    """Whether llama.cpp will run ``info`` correctly after blocks are removed."""
    arch = info.architecture
    if arch in PRUNABLE_ARCHS:
        if info.block_count < 2:
            return PruneCheck(False, "the model has a single block")
        return PruneCheck(True)
    why = _WHY_NOT.get(arch, "its block layout has not been verified for pruning")
    return PruneCheck(False, f"pruning {arch} models is not supported: {why}")


def validate_prune_layers(info: GGUFInfo, layers: Iterable[Any]) -> list[int]:
    """Check a user's list of blocks to remove; returns it sorted.

    Raises:
        SlmdeskError: not prunable, not integers, negative, out of range, duplicated, or all
            blocks.
    """
    check = check_prunable(info)
    if not check.allowed:
        raise SlmdeskError(f"Cannot prune {info.path.name}: {check.reason}.")
    n = info.block_count
    result: list[int] = []
    for item in layers:
        if isinstance(item, bool) or not isinstance(item, int):
            try:
                value = int(str(item).strip())
            except ValueError:
                raise SlmdeskError(f"Block index {item!r} is not a whole number.") from None
        else:
            value = item
        if value < 0:
            raise SlmdeskError(
                f"Block index {value} is negative; blocks are numbered 0 to {n - 1}."
            )
        if value >= n:
            raise SlmdeskError(
                f"Block index {value} is out of range: {info.path.name} has blocks 0 to {n - 1}."
            )
        if value in result:
            raise SlmdeskError(f"Block {value} is listed twice.")
        result.append(value)
    if not result:
        raise SlmdeskError("No blocks to remove were given.")
    if len(result) >= n:
        raise SlmdeskError(
            f"Cannot remove all {n} blocks of {info.path.name}: at least one must remain."
        )
    return sorted(result)


def parse_layer_list(text: str) -> list[str]:
    """Split ``"3,7"`` into items (validated later by `validate_prune_layers`)."""
    return [part for part in (p.strip() for p in text.split(",")) if part]


def swa_layers(info: GGUFInfo) -> list[bool] | None:
    """Per-layer sliding-window flags exactly as llama.cpp derives them, or None if not used."""
    arch = info.architecture
    default = PRUNABLE_ARCHS.get(arch)
    if default is None or not info.sliding_window:
        return None
    n = info.block_count
    value = info.metadata.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(value, list):
        return [bool(v) for v in value]
    n_pattern = int(value) if isinstance(value, int) and not isinstance(value, bool) else default
    # llama_hparams::set_swa_pattern with dense_first = false
    return [n_pattern == 0 or (il % n_pattern) < (n_pattern - 1) for il in range(n)]


def pruned_metadata_changes(
    info: GGUFInfo, removed: Sequence[int], item_types: dict[str, GGUFValueType]
) -> dict[str, tuple[GGUFValueType, GGUFValueType | None, Any]]:
    """Metadata to rewrite in a file pruned from ``info``: ``key -> (type, item type, value)``.

    Args:
        info: the model before pruning.
        removed: blocks removed.
        item_types: element type of each array key in the pruned file.
    """
    n = info.block_count
    keep = [i for i in range(n) if i not in set(removed)]
    arch = info.architecture
    changes: dict[str, tuple[GGUFValueType, GGUFValueType | None, Any]] = {}
    for key, value in info.metadata.items():
        if not key.startswith(f"{arch}.") or not isinstance(value, list) or len(value) != n:
            continue
        item = item_types.get(key)
        if item is None:
            continue
        changes[key] = (GGUFValueType.ARRAY, item, [value[i] for i in keep])
    pattern = swa_layers(info)
    if pattern is not None:
        key = f"{arch}.attention.sliding_window_pattern"
        changes[key] = (GGUFValueType.ARRAY, GGUFValueType.BOOL, [pattern[i] for i in keep])
    return changes


# -- a small GGUF header rewriter -------------------------------------------------------------
# The gguf package's reader decodes every vocabulary string (slow for 262k tokens), so the header
# is walked here once, keeping each key/value as raw bytes; changed keys are re-encoded and the
# tensor data is copied unchanged (tensor offsets are relative to the data section).

_SCALAR = SCALAR_FORMATS  # one table of GGUF scalar encodings, shared with gguf_info


@dataclass
class _RawHeader:
    version: int
    n_tensors: int
    kvs: list[tuple[str, bytes, GGUFValueType | None]]  # key, raw entry bytes, array item type
    tensor_table: bytes
    alignment: int
    data_offset: int


def _read_raw_header(path: Path) -> _RawHeader:
    with open(path, "rb") as handle:
        head = handle.read(24)
        if len(head) < 24 or head[:4] != b"GGUF":
            raise SlmdeskError(f"{path.name} is not a GGUF file.")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", head, 4)
        handle.seek(0)
        # Headers are small compared to the data, but vocabularies can be tens of MB.
        buf = handle.read(64 << 20)
        size = os.fstat(handle.fileno()).st_size
    pos = 24

    def need(n: int) -> None:
        if pos + n > len(buf):
            raise SlmdeskError(f"{path.name}: header larger than expected or truncated.")

    def u32() -> int:
        nonlocal pos
        need(4)
        (v,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        return int(v)

    def u64() -> int:
        nonlocal pos
        need(8)
        (v,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        return int(v)

    def skip_string() -> str:
        nonlocal pos
        n = u64()
        need(n)
        s = buf[pos : pos + n].decode("utf-8", errors="replace")
        pos += n
        return s

    kvs: list[tuple[str, bytes, GGUFValueType | None]] = []
    alignment = DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        start = pos
        key = skip_string()
        vtype = GGUFValueType(u32())
        item_type: GGUFValueType | None = None
        if vtype == GGUFValueType.STRING:
            skip_string()
        elif vtype == GGUFValueType.ARRAY:
            item_type = GGUFValueType(u32())
            count = u64()
            if item_type == GGUFValueType.STRING:
                for _ in range(count):
                    skip_string()
            else:
                width = struct.calcsize(_SCALAR[item_type])
                need(width * count)
                pos += width * count
        else:
            width = struct.calcsize(_SCALAR[vtype])
            need(width)
            if key == "general.alignment":
                (alignment,) = struct.unpack_from(_SCALAR[vtype], buf, pos)
            pos += width
        kvs.append((key, bytes(buf[start:pos]), item_type))
    table_start = pos
    for _ in range(n_tensors):
        skip_string()
        n_dims = u32()
        pos += 8 * n_dims + 4 + 8
        need(0)
    tensor_table = bytes(buf[table_start:pos])
    data_offset = (pos + alignment - 1) // alignment * alignment
    if data_offset > size:
        raise SlmdeskError(f"{path.name} is truncated.")
    return _RawHeader(version, n_tensors, kvs, tensor_table, int(alignment), data_offset)


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _encode_kv(key: str, vtype: GGUFValueType, item: GGUFValueType | None, value: Any) -> bytes:
    out = _encode_string(key) + struct.pack("<I", int(vtype))
    if vtype == GGUFValueType.ARRAY:
        assert item is not None
        out += struct.pack("<IQ", int(item), len(value))
        if item == GGUFValueType.STRING:
            return out + b"".join(_encode_string(str(v)) for v in value)
        fmt = _SCALAR[item]
        return out + b"".join(struct.pack(fmt, v) for v in value)
    if vtype == GGUFValueType.STRING:
        return out + _encode_string(str(value))
    return out + struct.pack(_SCALAR[vtype], value)


def _copy_rest(src: Any, dst: Any, offset: int) -> None:
    """Copy ``src`` from ``offset`` to its end onto ``dst`` (in the kernel where possible)."""
    dst.flush()
    size = os.fstat(src.fileno()).st_size
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            pos = offset
            while pos < size:
                sent = copy_range(src.fileno(), dst.fileno(), size - pos, pos)
                if sent <= 0:
                    break
                pos += sent
            if pos >= size:
                return
            offset = pos
        except OSError:
            pass  # not supported across these file systems: copy through user space
    src.seek(offset)
    dst.seek(0, os.SEEK_END)
    shutil.copyfileobj(src, dst, 16 << 20)


def array_item_types(path: Path) -> dict[str, GGUFValueType]:
    """Element type of every array key in a GGUF file's metadata."""
    return {k: t for k, _, t in _read_raw_header(path).kvs if t is not None}


def rewrite_metadata(
    path: Path, changes: dict[str, tuple[GGUFValueType, GGUFValueType | None, Any]]
) -> None:
    """Set metadata keys of a GGUF file in place (new keys are appended), atomically.

    Args:
        path: the file to change.
        changes: ``key -> (value type, array item type or None, value)``.
    """
    if not changes:
        return
    header = _read_raw_header(path)
    entries: list[bytes] = []
    seen: set[str] = set()
    for key, raw, _ in header.kvs:
        if key in changes:
            vtype, item, value = changes[key]
            entries.append(_encode_kv(key, vtype, item, value))
            seen.add(key)
        else:
            entries.append(raw)
    for key, (vtype, item, value) in changes.items():
        if key not in seen:
            entries.append(_encode_kv(key, vtype, item, value))
    head = (
        b"GGUF"
        + struct.pack("<IQQ", header.version, header.n_tensors, len(entries))
        + b"".join(entries)
        + header.tensor_table
    )
    pad = (-len(head)) % header.alignment
    tmp = path.with_name(f".{path.name}.meta.tmp")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(head + b"\0" * pad)
            _copy_rest(src, dst, header.data_offset)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fix_pruned_file(info: GGUFInfo, removed: Sequence[int], pruned_path: Path) -> list[str]:
    """Make a file pruned by llama.cpp from ``info`` load and behave right; returns keys changed."""
    changes = pruned_metadata_changes(info, removed, array_item_types(pruned_path))
    rewrite_metadata(pruned_path, changes)
    return sorted(changes)
