"""A small GGUF editor for tests: parse a well-formed file into parts, change them, write it back.

Hostile-file tests need files whose metadata holds values of the wrong type, or whose tensor
table says something impossible. The ``gguf`` package's writer refuses to produce most of those,
so this editor keeps each metadata value as its type code and raw encoded bytes and writes them
back verbatim; only what a test changes is re-encoded. It also records where every field sits in
the file (`GGUFDoc.fields`), which the fuzzer uses to aim its mutations.

It trusts its input: only parse files known to be valid (the synthesized model, Gemma).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

STRING, ARRAY = 8, 9
UINT32, INT32, FLOAT32, BOOL, UINT64, FLOAT64 = 4, 5, 6, 7, 10, 12
_MAPPED_ITEMS = 1500  # string-array items whose fields are recorded (the rest are only skipped)
SCALAR = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One numeric or text field of the header: where it is and what it means.

    ``role`` is one of: ``count`` (tensor/key counts), ``length`` (a string or array length),
    ``vtype`` (a value type code), ``value`` (a scalar value), ``text`` (string bytes),
    ``dims`` (a tensor's dimension count), ``dim``, ``ttype`` (a tensor type code),
    ``offset`` (a tensor data offset). ``key`` names the metadata key or tensor it belongs to.
    """

    offset: int
    width: int
    role: str
    key: str
    fmt: str = ""


@dataclass
class KV:
    """One metadata entry: its key, type code and the raw bytes of its value."""

    key: str
    vtype: int
    raw: bytes

    def scalar(self) -> object:
        """The value, for a scalar entry."""
        return struct.unpack(SCALAR[self.vtype], self.raw)[0]


@dataclass
class Tensor:
    """One tensor-table entry."""

    name: str
    shape: list[int]
    ttype: int
    offset: int


@dataclass
class GGUFDoc:
    """A parsed GGUF file: header parts plus the untouched tensor data."""

    version: int
    kvs: list[KV]
    tensors: list[Tensor]
    data: bytes
    alignment: int = 32
    fields: list[Field] = field(default_factory=list)
    header_size: int = 0

    # -- reading ----------------------------------------------------------------------------

    @classmethod
    def parse(cls, blob: bytes, with_data: bool = True) -> GGUFDoc:
        """Parse ``blob`` (a whole file, or at least its header when ``with_data`` is False)."""
        pos = 0
        fields: list[Field] = []

        def take(fmt: str, role: str = "", key: str = "") -> int:
            nonlocal pos
            size = struct.calcsize(fmt)
            (value,) = struct.unpack_from(fmt, blob, pos)
            if role:
                fields.append(Field(pos, size, role, key, fmt))
            pos += size
            return value

        def text(role_key: str) -> str:
            nonlocal pos
            length = take("<Q", "length", role_key)
            fields.append(Field(pos, length, "text", role_key))
            value = blob[pos : pos + length].decode("utf-8", errors="replace")
            pos += length
            return value

        def skip_text(role_key: str) -> None:
            # items of long arrays: no field records (a 262k vocabulary would be 500k of them)
            nonlocal pos
            (length,) = struct.unpack_from("<Q", blob, pos)
            pos += 8 + length

        assert blob[:4] == b"GGUF"
        pos = 4
        version = take("<I")
        n_tensors = take("<Q", "count", "n_tensors")
        n_kv = take("<Q", "count", "n_kv")
        kvs: list[KV] = []
        for _ in range(n_kv):
            key = text("key")
            vtype = take("<I", "vtype", key)
            start = pos
            if vtype == STRING:
                text(key)
            elif vtype == ARRAY:
                item = take("<I", "vtype", key)
                count = take("<Q", "length", key)
                if item == STRING:
                    for i in range(count):
                        if i < _MAPPED_ITEMS or i == count - 1:
                            text(key)
                        else:
                            skip_text(key)
                else:
                    size = struct.calcsize(SCALAR[item])
                    for i in range(min(count, 4)):
                        fields.append(Field(pos + i * size, size, "value", key, SCALAR[item]))
                    pos += size * count
            else:
                take(SCALAR[vtype], "value", key)
            kvs.append(KV(key, vtype, bytes(blob[start:pos])))
        tensors: list[Tensor] = []
        for _ in range(n_tensors):
            name = text("tensor")
            n_dims = take("<I", "dims", name)
            shape = [take("<Q", "dim", name) for _ in range(n_dims)]
            ttype = take("<I", "ttype", name)
            offset = take("<Q", "offset", name)
            tensors.append(Tensor(name, shape, ttype, offset))
        doc = cls(version, kvs, tensors, b"", fields=fields)
        align = doc.get("general.alignment")
        doc.alignment = int(align.scalar()) if align else 32  # type: ignore[call-overload]
        doc.header_size = pos
        data_start = (pos + doc.alignment - 1) // doc.alignment * doc.alignment
        doc.data = bytes(blob[data_start:]) if with_data else b""
        return doc

    @classmethod
    def read(cls, path: Path) -> GGUFDoc:
        """Parse the file at ``path``."""
        return cls.parse(path.read_bytes())

    # -- editing ----------------------------------------------------------------------------

    def get(self, key: str) -> KV | None:
        """The entry for ``key``, or None."""
        return next((kv for kv in self.kvs if kv.key == key), None)

    def set(self, key: str, vtype: int, value: object) -> GGUFDoc:
        """Set ``key`` to ``value`` stored as ``vtype`` (a scalar type or STRING), adding it if new."""
        if vtype == STRING:
            data = str(value).encode()
            raw = struct.pack("<Q", len(data)) + data
        else:
            raw = struct.pack(SCALAR[vtype], value)
        entry = self.get(key)
        if entry is None:
            self.kvs.append(KV(key, vtype, raw))
        else:
            entry.vtype, entry.raw = vtype, raw
        return self

    def set_raw(self, key: str, vtype: int, raw: bytes) -> GGUFDoc:
        """Set ``key`` to already-encoded bytes (arrays, or deliberately broken values)."""
        entry = self.get(key)
        if entry is None:
            self.kvs.append(KV(key, vtype, raw))
        else:
            entry.vtype, entry.raw = vtype, raw
        return self

    def set_strings(self, key: str, values: list[str | bytes]) -> GGUFDoc:
        """Set ``key`` to an array of strings (bytes are written as they are)."""
        out = [struct.pack("<IQ", STRING, len(values))]
        for value in values:
            data = value if isinstance(value, bytes) else value.encode()
            out.append(struct.pack("<Q", len(data)) + data)
        return self.set_raw(key, ARRAY, b"".join(out))

    def strings(self, key: str) -> list[bytes]:
        """The items of a string-array entry, as bytes."""
        entry = self.get(key)
        assert entry is not None and entry.vtype == ARRAY
        item, count = struct.unpack_from("<IQ", entry.raw, 0)
        assert item == STRING
        pos, items = 12, []
        for _ in range(count):
            (length,) = struct.unpack_from("<Q", entry.raw, pos)
            items.append(entry.raw[pos + 8 : pos + 8 + length])
            pos += 8 + length
        return items

    def remove(self, key: str) -> GGUFDoc:
        """Drop ``key``."""
        self.kvs = [kv for kv in self.kvs if kv.key != key]
        return self

    def tensor(self, name: str) -> Tensor:
        """The tensor called ``name``."""
        return next(t for t in self.tensors if t.name == name)

    # -- writing ----------------------------------------------------------------------------

    def to_bytes(self, alignment: int | None = None) -> bytes:
        """The file: header, padding to ``alignment`` (default: the document's), tensor data."""
        align = alignment or self.alignment
        out = [struct.pack("<IIQQ", 0x46554747, self.version, len(self.tensors), len(self.kvs))]
        for kv in self.kvs:
            key = kv.key.encode()
            out.append(struct.pack("<Q", len(key)) + key + struct.pack("<I", kv.vtype) + kv.raw)
        for t in self.tensors:
            name = t.name.encode()
            out.append(struct.pack("<Q", len(name)) + name + struct.pack("<I", len(t.shape)))
            out.append(struct.pack(f"<{len(t.shape)}Q", *t.shape))
            out.append(struct.pack("<IQ", t.ttype, t.offset))
        header = b"".join(out)
        header += b"\0" * ((-len(header)) % align)
        return header + self.data

    def write(self, path: Path, alignment: int | None = None) -> Path:
        """Write the file to ``path`` and return it."""
        path.write_bytes(self.to_bytes(alignment))
        return path
