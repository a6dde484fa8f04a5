"""Headers read before are remembered per file identity: never stale, never shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models import gguf_memo
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info, read_tensor_count


@pytest.fixture(autouse=True)
def _empty_memo() -> None:
    gguf_memo.forget_all()


def _reader_calls(path: Path) -> list[Path]:
    """The paths ``read_remembered`` hands its reader for ``path`` (none when remembered)."""
    calls: list[Path] = []

    def reader(p: Path) -> GGUFInfo:
        calls.append(p)
        return read_gguf_info(p)

    gguf_memo.read_remembered(path, reader, lambda info: info)
    return calls


def test_a_second_read_of_the_same_file_is_remembered_and_a_private_copy(tiny_model: Path) -> None:
    first = read_gguf_info(tiny_model)
    assert _reader_calls(tiny_model) == []
    again = read_gguf_info(tiny_model)
    assert again == first and again is not first
    again.metadata["general.name"] = "changed by a caller"
    again.tensors.clear()
    fresh = read_gguf_info(tiny_model)
    assert fresh.name == first.name and len(fresh.tensors) == len(first.tensors)


def test_a_file_rewritten_in_place_with_the_same_size_and_times_is_read_again(
    tiny_model: Path,
) -> None:
    read_gguf_info(tiny_model)
    before = tiny_model.stat()
    data = bytearray(tiny_model.read_bytes())
    data[4:8] = (99).to_bytes(4, "little")  # an unsupported version, same size
    tiny_model.write_bytes(bytes(data))
    os.utime(tiny_model, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(InvalidModelError, match="version 99"):
        read_gguf_info(tiny_model)


def test_a_replaced_file_is_read_again(tiny_model: Path, tmp_path: Path) -> None:
    read_gguf_info(tiny_model)
    other = tmp_path / "other.gguf"
    other.write_text("not a model", encoding="utf-8")
    os.replace(other, tiny_model)
    with pytest.raises(InvalidModelError, match="not a GGUF"):
        read_gguf_info(tiny_model)


def test_failures_are_not_remembered_and_the_memo_is_bounded(tiny_model: Path) -> None:
    broken = tiny_model.with_name("broken.gguf")
    broken.write_bytes(b"GGUF" + bytes(10))
    for _ in range(2):
        with pytest.raises(InvalidModelError):
            read_gguf_info(broken)
    copies = []
    for i in range(gguf_memo.MAX_REMEMBERED + 5):
        copy = tiny_model.with_name(f"copy-{i}.gguf")
        copy.write_bytes(tiny_model.read_bytes())
        copies.append(copy)
        read_gguf_info(copy)
    assert _reader_calls(copies[-1]) == []
    assert _reader_calls(copies[0]) == [copies[0]]  # the oldest was let go


def test_tensor_count_from_the_first_bytes(tiny_model: Path, tmp_path: Path) -> None:
    assert read_tensor_count(tiny_model) == len(read_gguf_info(tiny_model).tensors)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model at all, just words", encoding="utf-8")
    with pytest.raises(InvalidModelError, match="not a GGUF"):
        read_tensor_count(text)
    short = tmp_path / "short.gguf"
    short.write_bytes(tiny_model.read_bytes()[:10])
    with pytest.raises(InvalidModelError, match="not a GGUF"):
        read_tensor_count(short)
    with pytest.raises(InvalidModelError, match="cannot be read"):
        read_tensor_count(tmp_path / "missing.gguf")


def test_the_memo_keeps_headers_within_a_byte_budget(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = read_gguf_info(tiny_model).data_offset
    monkeypatch.setattr(gguf_memo, "MAX_HEADER_BYTES", 2 * header)
    gguf_memo.forget_all()
    copies = [tiny_model.with_name(f"copy-{i}.gguf") for i in range(3)]
    for copy in copies:
        copy.write_bytes(tiny_model.read_bytes())
        read_gguf_info(copy)
    assert _reader_calls(copies[2]) == [] and _reader_calls(copies[1]) == []
    assert _reader_calls(copies[0]) == [copies[0]]
