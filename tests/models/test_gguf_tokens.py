"""The vocabulary's token texts, read fast and with the header reader's bounds."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.gguf_info import read_gguf_info, read_token_texts


def test_token_texts_match_the_gguf_package(tiny_model: Path) -> None:
    field = gguf.GGUFReader(str(tiny_model)).fields["tokenizer.ggml.tokens"]
    expected = [bytes(field.parts[i]) for i in field.data]
    texts = read_token_texts(tiny_model)
    assert texts == expected
    assert len(texts) == read_gguf_info(tiny_model).vocab_size


def test_damaged_files_get_a_sentence(tiny_model: Path, tmp_path: Path) -> None:
    data = tiny_model.read_bytes()
    start = data.index(b"tokenizer.ggml.tokens")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: start + 200])  # ends inside the vocabulary
    with pytest.raises(InvalidModelError, match=r"cut\.gguf is truncated"):
        read_token_texts(cut)
    text = tmp_path / "notes.gguf"
    text.write_text("plain words, no model here", encoding="utf-8")
    with pytest.raises(InvalidModelError, match="not a GGUF"):
        read_token_texts(text)
    with pytest.raises(InvalidModelError, match="cannot be read"):
        read_token_texts(tmp_path / "missing.gguf")


def test_a_model_without_a_vocabulary_says_so(tmp_path: Path) -> None:
    path = tmp_path / "bare.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("bare")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(InvalidModelError, match="has no vocabulary"):
        read_token_texts(path)
