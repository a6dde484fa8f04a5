"""A seeded GGUF mutator: one damaged variant of a valid model per seed.

Each case is reproducible from its source and number alone (``random.Random(f"{source}:{n}")``).
The mutations aim where damage hurts: the field map from `GGUFDoc.parse` says where every count,
length, type code, value and tensor entry sits, so most cases change a field that means
something, and the rest are blind bit flips, byte overwrites and truncations. A last class edits
known keys semantically (values llama.cpp is known to abort on, such as a NaN norm epsilon or a
duplicated token) by rewriting the header.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

from tests.reliability.gguf_edit import FLOAT32, KV, STRING, UINT32, Field, GGUFDoc

# The input classes, in the order the report lists them.
KINDS = (
    "bit flip",
    "byte overwrite",
    "boundary integer",
    "count/length inflation",
    "type-code change",
    "truncation",
    "known-key value",
)
_WEIGHTS = (20, 10, 22, 16, 12, 8, 12)

_FLOAT_SPECIALS = (math.nan, -math.nan, math.inf, -math.inf, -1.0, 0.0, -1e-6, 1e30, 5e-324)


@dataclass(frozen=True)
class Mutation:
    """How to damage a file: byte writes, a truncation, or a whole new header."""

    kind: str
    target: str
    writes: tuple[tuple[int, bytes], ...] = ()
    truncate_to: int | None = None
    new_header: bytes | None = None


def boundary_values(width: int, current: int) -> list[int]:
    """Integers at the edges of a field of ``width`` bytes, plus near the current value."""
    top = (1 << (8 * width)) - 1
    half = 1 << (8 * width - 1)
    values = {0, 1, 2, top, top - 1, half, half - 1, current + 1, max(current - 1, 0)}
    values |= {min(current * 2, top), min(current * 256 + 255, top)}
    if width >= 4:
        values |= {255, 256, 512, 513, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1}
    if width >= 8:
        values |= {2**32, 2**40, 2**62, 2**63 - 1, 2**63}
    return sorted(v for v in values if 0 <= v <= top)


def make_mutation(rng: random.Random, doc: GGUFDoc, header: bytes, file_size: int) -> Mutation:
    """One mutation of ``header`` (the original file's header) chosen by ``rng``."""
    kind = rng.choices(KINDS, _WEIGHTS)[0]
    fields = doc.fields
    if kind == "bit flip":
        writes = []
        for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
            pos = rng.randrange(len(header))
            writes.append((pos, bytes([header[pos] ^ (1 << rng.randrange(8))])))
        return Mutation(kind, _where(fields, writes[0][0]), tuple(writes))
    if kind == "byte overwrite":
        pos = rng.randrange(len(header))
        size = rng.choice((1, 2, 4, 8))
        data = rng.choice(
            (bytes(size), b"\xff" * size, bytes(rng.randrange(256) for _ in range(size)))
        )
        return Mutation(kind, _where(fields, pos), ((pos, data[: len(header) - pos]),))
    if kind == "boundary integer":
        f = _pick(
            rng, fields, ("count", "length", "dims", "dim", "offset", "value", "vtype", "ttype")
        )
        if f.fmt in ("<f", "<d"):
            value = struct.pack(f.fmt, rng.choice(_FLOAT_SPECIALS))
        else:
            current = int.from_bytes(header[f.offset : f.offset + f.width], "little")
            chosen = rng.choice(boundary_values(f.width, current))
            value = chosen.to_bytes(f.width, "little")
        return Mutation(kind, f"{f.role} of {f.key!r}", ((f.offset, value),))
    if kind == "count/length inflation":
        f = _pick(rng, fields, ("count", "length", "dims"))
        current = int.from_bytes(header[f.offset : f.offset + f.width], "little")
        top = (1 << (8 * f.width)) - 1
        inflated = rng.choice(
            (
                current + 1,
                current + rng.randrange(2, 64),
                current * 2,
                current * 1000,
                file_size,
                file_size - f.offset,
                len(header) - f.offset,
                file_size * 8,
                2**40,
            )
        )
        value = min(max(inflated, current + 1), top).to_bytes(f.width, "little")
        return Mutation(kind, f"{f.role} of {f.key!r}", ((f.offset, value),))
    if kind == "type-code change":
        f = _pick(rng, fields, ("vtype", "ttype"))
        code = rng.choice((*range(0, 14), *range(14, 42), 255, 2**31, 2**32 - 1))
        return Mutation(kind, f"{f.role} of {f.key!r}", ((f.offset, code.to_bytes(4, "little")),))
    if kind == "truncation":
        where = rng.random()
        if where < 0.6:
            size = rng.randrange(len(header))
        elif where < 0.9:
            size = rng.randrange(len(header), file_size)
        else:
            size = file_size - rng.randrange(1, 4096)
        return Mutation(kind, f"cut at {size:,} of {file_size:,} bytes", truncate_to=max(size, 0))
    return _known_key(rng, doc)


def _known_key(rng: random.Random, source: GGUFDoc) -> Mutation:
    """Rewrite the header with one known key set to a value llama.cpp is known to choke on."""
    doc = GGUFDoc(source.version, [_copy(kv) for kv in source.kvs], list(source.tensors), b"")
    doc.alignment = source.alignment
    arch_kv = doc.get("general.architecture")
    arch = arch_kv.raw[8:].decode() if arch_kv else "llama"
    choice = rng.randrange(14)
    alignment = None
    if choice == 0:
        target = f"{arch}.block_count"
        doc.set(target, UINT32, rng.choice((0, 65536, 513, 2**32 - 1)))
    elif choice == 1:
        target = f"{arch}.block_count as text"
        doc.set(f"{arch}.block_count", STRING, "eighteen")
    elif choice == 2:
        target = f"{arch}.attention.layer_norm_rms_epsilon"
        doc.set(target, FLOAT32, rng.choice((math.nan, -1e-6, math.inf, 0.0, -math.inf)))
    elif choice == 3:
        target = f"{arch}.context_length"
        doc.set(target, UINT32, rng.choice((2**31 - 1, 2**32 - 1, 0)))
    elif choice == 4:
        target = "general.alignment"
        value = rng.choice((1, 3, 8, 16, 24, 64))
        doc.set(target, UINT32, value)
        alignment = value if value & (value - 1) == 0 else doc.alignment
    elif choice == 5:
        target = "general.alignment as text"
        doc.set("general.alignment", STRING, "32")
    elif choice == 6:
        target = f"{arch}.expert_count"
        doc.set(target, UINT32, rng.choice((4, 8, 4096)))
        if rng.random() < 0.5:
            doc.set(f"{arch}.expert_used_count", UINT32, 2)
    elif choice == 7:
        target = "tokenizer.ggml.model"
        doc.set(target, STRING, rng.choice(("llamb", "", "gpt3", "\x1b[31mred")))
    elif choice == 8:
        target = f"{arch}.rope.scaling.type"
        doc.set(target, STRING, rng.choice(("bogus", "", "LINEAR")))
    elif choice == 9:
        tokens = doc.strings("tokenizer.ggml.tokens")
        i, j = rng.sample(range(len(tokens)), 2)
        damaged = list(tokens)
        how = rng.randrange(3)
        if how == 0:
            damaged[j] = tokens[i]
            target = f"token {j} made a copy of token {i}"
        elif how == 1:
            damaged[j] = tokens[j] + b"\xff"
            target = f"token {j} made invalid UTF-8"
        else:
            word = bytearray(tokens[j] or b"x")
            word[rng.randrange(len(word))] ^= 1 << rng.randrange(8)
            damaged[j] = bytes(word)
            target = f"token {j} with a flipped bit"
        doc.set_strings("tokenizer.ggml.tokens", list(damaged))
    elif choice == 10:
        tensor = rng.choice(doc.tensors)
        code = rng.choice((24, 25, 26, 27, 28))  # I8, I16, I32, I64, F64
        doc.tensors = [
            type(t)(t.name, t.shape, code, t.offset) if t is tensor else t for t in doc.tensors
        ]
        target = f"type of tensor {tensor.name!r} set to {code}"
    elif choice == 11:
        target = f"{arch}.attention.head_count_kv"
        doc.set(target, UINT32, rng.choice((0, 3, 1000)))
    elif choice == 12:
        target = "a key with an empty name"
        doc.set("", UINT32, 1)
    else:
        target = f"{arch}.feed_forward_length as float"
        doc.set(f"{arch}.feed_forward_length", FLOAT32, 1.5)
    header = doc.to_bytes(alignment)
    return Mutation("known-key value", target, new_header=header)


def _copy(kv: KV) -> KV:
    return KV(kv.key, kv.vtype, kv.raw)


def _pick(rng: random.Random, fields: list[Field], roles: tuple[str, ...]) -> Field:
    """A field with one of ``roles``; the vocabulary's thousands of entries do not crowd out the rest."""
    for _ in range(200):
        f = fields[rng.randrange(len(fields))] if rng.random() < 0.3 else _few(rng, fields)
        if f.role in roles and f.width in (1, 2, 4, 8):
            return f
    return next(f for f in fields if f.role in roles and f.width in (1, 2, 4, 8))


def _few(rng: random.Random, fields: list[Field]) -> Field:
    """A field outside the long arrays (the first few hundred and the tensor table)."""
    if rng.random() < 0.5 or len(fields) < 400:
        return fields[rng.randrange(min(len(fields), 300))]
    tensor_start = next(
        (i for i, f in enumerate(fields) if f.role in ("dims", "ttype")), len(fields) - 1
    )
    tensor_start = max(tensor_start - 2, 0)
    return fields[rng.randrange(tensor_start, len(fields))]


def _where(fields: list[Field], pos: int) -> str:
    """A name for the byte at ``pos``: the field it falls in."""
    lo, hi = 0, len(fields)
    while lo < hi:
        mid = (lo + hi) // 2
        if fields[mid].offset <= pos:
            lo = mid + 1
        else:
            hi = mid
    if lo:
        f = fields[lo - 1]
        if f.offset <= pos < f.offset + max(f.width, 1):
            return f"{f.role} of {f.key!r}"
    return f"byte {pos:,}"
