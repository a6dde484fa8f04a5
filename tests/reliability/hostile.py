"""Hostile GGUF files, one per fault llama.cpp or the old reader could not take.

Each builder takes a parsed valid model (`GGUFDoc`) and returns the damaged file's bytes. The
table `HOSTILE` names each case, the fault class it belongs to, and a fragment of the sentence
slmdesk must refuse it with. Used by ``tests/models/test_gguf_hostile.py`` and by the probe that
shows which of them crash llama.cpp when nothing stops them (`probe_raw_llama`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from tests.reliability.gguf_edit import FLOAT32, STRING, UINT32, UINT64, GGUFDoc


@dataclass(frozen=True)
class Hostile:
    """One hostile file: how to build it and what the refusal must say."""

    name: str
    fault: str  # "llama.cpp abort": raw llama.cpp dies on it (checked by the --long probe)
    build: Callable[[GGUFDoc], bytes]
    expect: str


def _arch(doc: GGUFDoc) -> str:
    kv = doc.get("general.architecture")
    assert kv is not None
    return kv.raw[8:].decode()


def _set(key_suffix: str, vtype: int, value: object) -> Callable[[GGUFDoc], bytes]:
    def build(doc: GGUFDoc) -> bytes:
        key = key_suffix.replace("{arch}", _arch(doc))
        return doc.set(key, vtype, value).to_bytes()

    return build


def _duplicate_token(doc: GGUFDoc) -> bytes:
    tokens = doc.strings("tokenizer.ggml.tokens")
    tokens[-1] = tokens[-2]
    return doc.set_strings("tokenizer.ggml.tokens", list(tokens)).to_bytes()


def _nul_token(doc: GGUFDoc) -> bytes:
    # llama.cpp cuts a token at its first NUL: "<0x41>" followed by NUL and junk becomes a copy
    tokens = doc.strings("tokenizer.ggml.tokens")
    tokens[-1] = tokens[300] + b"\0junk"
    return doc.set_strings("tokenizer.ggml.tokens", list(tokens)).to_bytes()


def _bad_utf8_token(doc: GGUFDoc) -> bytes:
    tokens = doc.strings("tokenizer.ggml.tokens")
    tokens[-1] = tokens[-1] + b"\xc3"
    return doc.set_strings("tokenizer.ggml.tokens", list(tokens)).to_bytes()


def _missing_byte_token(doc: GGUFDoc) -> bytes:
    tokens = doc.strings("tokenizer.ggml.tokens")
    index = tokens.index(b"<0x0A>")
    tokens[index] = b"<0x0A)"
    return doc.set_strings("tokenizer.ggml.tokens", list(tokens)).to_bytes()


def _retype(code: int) -> Callable[[GGUFDoc], bytes]:
    def build(doc: GGUFDoc) -> bytes:
        # a 1-D F32 norm retyped to I32 keeps its size, so only the type is wrong
        norm = next(t for t in doc.tensors if t.ttype == 0 and len(t.shape) == 1)
        norm.ttype = code
        return doc.to_bytes()

    return build


def _experts_without_used_count(doc: GGUFDoc) -> bytes:
    return doc.set(f"{_arch(doc)}.expert_count", UINT32, 8).to_bytes()


def _experts_without_tensors(doc: GGUFDoc) -> bytes:
    arch = _arch(doc)
    return (
        doc.set(f"{arch}.expert_count", UINT32, 8)
        .set(f"{arch}.expert_used_count", UINT32, 2)
        .to_bytes()
    )


def _alignment(value: int) -> Callable[[GGUFDoc], bytes]:
    def build(doc: GGUFDoc) -> bytes:
        doc.set("general.alignment", UINT32, value)
        return doc.to_bytes(value if value & (value - 1) == 0 else None)

    return build


def _empty_key(doc: GGUFDoc) -> bytes:
    return doc.set("", UINT32, 7).to_bytes()


def _zero_dim(doc: GGUFDoc) -> bytes:
    doc.tensors[-1].shape[-1] = 0
    return doc.to_bytes()


def _huge_key_length(doc: GGUFDoc) -> bytes:
    blob = bytearray(doc.to_bytes())
    # the first key's length: claim nearly the whole file as one key
    struct.pack_into("<Q", blob, 24, len(blob) - 64)
    return bytes(blob)


def _duplicate_escape_key(doc: GGUFDoc) -> bytes:
    evil = "\x1b[2J\x1b[31m" + "B" * 20000
    doc.set(evil, UINT32, 1)
    doc.kvs.append(type(doc.kvs[0])(evil, UINT32, struct.pack("<I", 2)))
    return doc.to_bytes()


def _wrong_dims(doc: GGUFDoc) -> bytes:
    blob = bytearray(doc.to_bytes())
    # turn the first tensor's dimension count from 2 into 1: every later field shifts by 8 bytes
    name = doc.tensors[0].name.encode()
    at = blob.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
    struct.pack_into("<I", blob, at, 3)
    return bytes(blob)


def _tokens_count_inflated(doc: GGUFDoc) -> bytes:
    blob = bytearray(doc.to_bytes())
    key = b"tokenizer.ggml.tokens"
    at = blob.index(key) + len(key) + 4 + 4  # type, item type
    struct.pack_into("<Q", blob, at, 2**62)
    return bytes(blob)


def _token_length_inflated(doc: GGUFDoc) -> bytes:
    blob = bytearray(doc.to_bytes())
    key = b"tokenizer.ggml.tokens"
    first_token = blob.index(key) + len(key) + 4 + 4 + 8  # type, item type, count
    (length,) = struct.unpack_from("<Q", blob, first_token)
    struct.pack_into("<Q", blob, first_token, length | 1 << 21)  # 2 MB of a 5 MB file
    return bytes(blob)


def _block_count_text(doc: GGUFDoc) -> bytes:
    return doc.set(f"{_arch(doc)}.block_count", STRING, "eighteen").to_bytes()


HOSTILE: list[Hostile] = [
    Hostile("huge key length", "absurd count or length", _huge_key_length, "claims"),
    Hostile(
        "escape codes in a duplicated key", "hostile text", _duplicate_escape_key, "appears twice"
    ),
    Hostile("tensor dimension count off by one", "shifted tensor table", _wrong_dims, "corrupt"),
    Hostile("vocabulary count 2^62", "absurd count or length", _tokens_count_inflated, "claims"),
    Hostile(
        "vocabulary token length 2 MB", "absurd count or length", _token_length_inflated, "claims"
    ),
    Hostile("block_count as text", "wrong value type", _block_count_text, "whole number"),
    Hostile(
        "alignment as text", "wrong value type", _set("general.alignment", STRING, "32"), "32-bit"
    ),
    Hostile(
        "head_count as fraction",
        "wrong value type",
        _set("{arch}.attention.head_count", FLOAT32, 2.5),
        "whole number",
    ),
    Hostile("block_count 0", "llama.cpp abort", _set("{arch}.block_count", UINT32, 0), "1 to 512"),
    Hostile(
        "block_count 65536",
        "llama.cpp abort",
        _set("{arch}.block_count", UINT32, 65536),
        "1 to 512",
    ),
    Hostile(
        "rms epsilon NaN",
        "llama.cpp abort",
        _set("{arch}.attention.layer_norm_rms_epsilon", FLOAT32, math.nan),
        "small positive",
    ),
    Hostile(
        "rms epsilon negative",
        "llama.cpp abort",
        _set("{arch}.attention.layer_norm_rms_epsilon", FLOAT32, -1e-5),
        "small positive",
    ),
    Hostile(
        "head_count_kv 0",
        "llama.cpp error",
        _set("{arch}.attention.head_count_kv", UINT32, 0),
        "does not divide",
    ),
    Hostile(
        "head_count_kv 3 of 4 heads",
        "llama.cpp error",
        _set("{arch}.attention.head_count_kv", UINT32, 3),
        "does not divide",
    ),
    Hostile("duplicate token", "llama.cpp abort", _duplicate_token, "are the same"),
    Hostile("token with a NUL byte", "llama.cpp abort", _nul_token, "are the same"),
    Hostile("token not UTF-8", "damaged vocabulary", _bad_utf8_token, "not valid text"),
    Hostile("byte token <0x0A> damaged", "llama.cpp abort", _missing_byte_token, "byte tokens"),
    Hostile("norm tensor retyped to I32", "llama.cpp abort", _retype(26), "I32"),
    Hostile(
        "expert_count without expert_used_count",
        "llama.cpp abort",
        _experts_without_used_count,
        "for 8 experts",
    ),
    Hostile(
        "expert_count without expert tensors",
        "llama.cpp error",
        _experts_without_tensors,
        "no expert tensors",
    ),
    Hostile("alignment 1", "llama.cpp abort", _alignment(1), "aligned"),
    Hostile("alignment 24", "llama.cpp error", _alignment(24), "power of two"),
    Hostile(
        "unknown tokenizer model",
        "llama.cpp error",
        _set("tokenizer.ggml.model", STRING, "llamb"),
        "tokenizer",
    ),
    Hostile(
        "bad rope scaling type",
        "llama.cpp abort",
        _set("{arch}.rope.scaling.type", STRING, "bogus"),
        "rope.scaling.type",
    ),
    Hostile("empty metadata key", "llama.cpp error", _empty_key, "empty"),
    Hostile("tensor dimension 0", "llama.cpp error", _zero_dim, "impossible shape"),
    Hostile(
        "context length 2^31-1",
        "resource exhaustion",
        _set("{arch}.context_length", UINT32, 2**31 - 1),
        "no model is trained on more",
    ),
    Hostile(
        "context length 2^64-1",
        "llama.cpp error",
        _set("{arch}.context_length", UINT64, 2**64 - 1),
        "no model is trained on more",
    ),
]

__all__ = ["HOSTILE", "Hostile"]
