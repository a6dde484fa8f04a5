"""GGUF reading and validation on real files: a synthesized model and damaged copies of it."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import gguf
import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_info import read_gguf_info, split_parts


def test_reads_tiny_model_facts(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    assert info.architecture == "llama"
    assert info.block_count == 4
    assert info.embedding_length == 256
    assert info.head_count == 4
    assert info.head_count_kv == 2
    assert info.context_length == 2048
    assert info.quantization == "F16"
    assert info.has_chat_template
    assert "<|im_start|>" in (info.chat_template or "")
    assert info.tokenizer_model == "llama"
    assert info.license == "mit"
    assert info.size_bytes == tiny_model.stat().st_size
    # 9 tensors per block + embeddings, output norm and output
    assert len(info.tensors) == 4 * 9 + 3


def test_parameter_count_matches_the_gguf_package(tiny_model: Path) -> None:
    reader = gguf.GGUFReader(str(tiny_model))
    expected = sum(int(t.n_elements) for t in reader.tensors)
    assert read_gguf_info(tiny_model).parameters == expected
    assert read_gguf_info(tiny_model).vocab_size == len(reader.fields["tokenizer.ggml.tokens"].data)


def test_model_without_template(tiny_model_no_template: Path) -> None:
    info = read_gguf_info(tiny_model_no_template)
    assert not info.has_chat_template
    assert info.chat_template is None


def test_text_file_named_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("just some notes, not a model\n")
    with pytest.raises(InvalidModelError, match="not a GGUF model"):
        read_gguf_info(bad)


def test_zero_byte_file(tmp_path: Path) -> None:
    bad = tmp_path / "empty.gguf"
    bad.touch()
    with pytest.raises(InvalidModelError, match="empty"):
        read_gguf_info(bad)


def test_truncated_mid_tensor(tiny_model: Path) -> None:
    size = tiny_model.stat().st_size
    os.truncate(tiny_model, size // 2)
    with pytest.raises(InvalidModelError, match="truncated"):
        read_gguf_info(tiny_model)


def test_truncated_inside_header(tiny_model: Path) -> None:
    os.truncate(tiny_model, 200)
    with pytest.raises(InvalidModelError, match="truncated or corrupt"):
        read_gguf_info(tiny_model)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="folder"):
        read_gguf_info(tmp_path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidModelError, match="does not exist"):
        read_gguf_info(tmp_path / "nope.gguf")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tiny_model: Path) -> None:
    tiny_model.chmod(0)
    with pytest.raises(InvalidModelError, match="permission denied"):
        read_gguf_info(tiny_model)


def test_unsupported_version(tiny_model: Path) -> None:
    with open(tiny_model, "r+b") as handle:
        handle.seek(4)
        handle.write(struct.pack("<I", 99))
    with pytest.raises(InvalidModelError, match="version 99"):
        read_gguf_info(tiny_model)


def test_absurd_counts(tiny_model: Path) -> None:
    with open(tiny_model, "r+b") as handle:
        handle.seek(8)
        handle.write(struct.pack("<Q", 10**12))
    with pytest.raises(InvalidModelError, match="corrupt"):
        read_gguf_info(tiny_model)


def test_duplicate_tensor_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    import numpy as np

    writer.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float32))
    writer.add_tensor("blk.0.attn_k.weight", np.zeros((32, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = bytearray(path.read_bytes())
    first = data.find(b"blk.0.attn_k.weight")
    data[first : first + len(b"blk.0.attn_q.weight")] = b"blk.0.attn_q.weight"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidModelError, match="appears twice"):
        read_gguf_info(path)


def test_split_model_is_read_as_one(tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "split"
    folder.mkdir()
    first = folder / "model-00001-of-00002.gguf"
    shutil.copyfile(tiny_model, first)
    shutil.copyfile(tiny_model, folder / "model-00002-of-00002.gguf")
    info = read_gguf_info(folder / "model-00002-of-00002.gguf")
    assert info.path == first
    assert len(info.split_files) == 2
    assert info.size_bytes == 2 * tiny_model.stat().st_size
    assert split_parts(first)[1].name == "model-00002-of-00002.gguf"


def test_split_model_with_missing_part(tiny_model: Path, tmp_path: Path) -> None:
    first = tmp_path / "model-00001-of-00003.gguf"
    shutil.copyfile(tiny_model, first)
    with pytest.raises(InvalidModelError, match="2 part"):
        read_gguf_info(first)


@pytest.mark.integration
def test_gemma_starter_facts(gemma_model: Path) -> None:
    info = read_gguf_info(gemma_model)
    assert info.architecture == "gemma3"
    assert info.block_count == 18
    assert info.quantization == "Q4_K_M"
    assert info.vocab_size == 262144
    assert not info.has_chat_template
    assert info.sliding_window == 512


def test_value_type_codes_match_the_gguf_package() -> None:
    from slmdesk.models import gguf_info

    for member in gguf.GGUFValueType:
        assert gguf_info._TYPE_NAMES[int(member)] == member.name
        if member.name not in ("STRING", "ARRAY"):
            assert int(member) in gguf_info.SCALAR_FORMATS


def test_reading_a_header_module_does_not_import_numpy() -> None:
    import subprocess
    import sys

    code = "import sys, slmdesk.models.gguf_info; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
