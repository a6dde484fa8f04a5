"""Copies of a test GGUF with some metadata changed, for tests that need a variant model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf


def copy_gguf_with(source: Path, dest: Path, changes: dict[str, Any]) -> Path:
    """A copy of a llama GGUF with some keys' values replaced (tensors as they are).

    A changed key keeps its stored type; a key ``source`` lacks is added as a uint32.
    """
    reader = gguf.GGUFReader(str(source), "r")
    writer = gguf.GGUFWriter(str(dest), "llama")
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = changes.get(field.name, field.contents())
        writer.add_key_value(field.name, value, kind, sub)
    for key, value in changes.items():
        if key not in reader.fields:
            writer.add_uint32(key, value)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name,
            tensor.data.shape,
            tensor.data.dtype,
            tensor.data.nbytes,
            tensor.tensor_type,
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data)
    writer.close()
    return dest
