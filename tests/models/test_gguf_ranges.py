"""Reading a GGUF header in byte ranges: the same facts as a local read, a few hundred KB, capped.

The reader is given the real files' bytes through a ``read(offset, length)`` function that
counts what it serves; hostile "files" are made of a real header's start followed by bytes a
server could send for ever.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models import hardware
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.gguf_ranges import HARD_CAP, NORMAL_BUDGET, read_header_in_ranges

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hub"))
from big_vocab import write_big_vocab_gguf


class Served:
    """A file's bytes served in ranges, counting what was asked and sent."""

    def __init__(self, data: bytes | None = None, tail: bytes = b"") -> None:
        self.data = data or b""
        self.tail = tail  # repeated for ever after ``data``
        self.sent = 0
        self.requests = 0

    def __call__(self, offset: int, length: int) -> bytes:
        self.requests += 1
        if offset + length <= len(self.data):
            piece = self.data[offset : offset + length]
        else:
            piece = self.data[offset : offset + length]
            need = length - len(piece)
            start = max(0, offset - len(self.data)) % max(len(self.tail), 1)
            reps = (start + need) // max(len(self.tail), 1) + 1
            piece += (self.tail * reps)[start : start + need]
        self.sent += len(piece)
        return piece


@pytest.fixture(scope="session")
def big_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_vocab_gguf(tmp_path_factory.mktemp("big") / "big-vocab-F16.gguf", 100_000)


def _same_facts(path: Path, served: Served) -> int:
    data = path.read_bytes()
    served.data = data
    result = read_header_in_ranges(served, path.name, len(data))
    local = read_gguf_info(path)
    remote = result.info
    assert remote.architecture == local.architecture
    assert remote.parameters == local.parameters
    assert remote.context_length == local.context_length
    assert remote.has_chat_template == local.has_chat_template
    assert remote.vocab_size == local.vocab_size
    assert remote.data_offset == local.data_offset
    assert remote.weights_bytes == local.weights_bytes
    assert hardware.estimate_memory(remote).total_bytes == (
        hardware.estimate_memory(local).total_bytes
    )
    assert result.bytes_read == served.sent
    assert result.requests == served.requests
    return result.skipped_arrays


def test_gemma_header_is_read_exactly_in_under_a_megabyte(gemma_model: Path) -> None:
    served = Served()
    skipped = _same_facts(gemma_model, served)
    assert skipped == 1  # the 262,144 token texts
    assert served.sent <= 1 << 20, served.sent  # the header is 6.5 MB; the target is 4 MB


def test_big_bpe_vocabulary_skips_tokens_and_merges(big_vocab_model: Path) -> None:
    served = Served()
    assert _same_facts(big_vocab_model, served) == 2
    assert served.sent <= 1 << 20, served.sent


def test_tiny_model_is_read_in_order(tiny_model: Path) -> None:
    served = Served()
    _same_facts(tiny_model, served)
    assert served.sent <= 256 << 10


def test_a_failed_proof_reads_again_in_order_within_the_cap(gemma_model: Path) -> None:
    """A listed size the tensor table does not end at: the jumps are not trusted."""
    data = gemma_model.read_bytes()
    served = Served(data + b"\0" * 4096)
    result = read_header_in_ranges(served, gemma_model.name, len(data) + 4096)
    assert result.skipped_arrays == 0
    assert result.info.data_offset == read_gguf_info(gemma_model).data_offset
    assert NORMAL_BUDGET // 8 < served.sent <= HARD_CAP


def _with_token_count(data: bytes, count: int) -> bytes:
    """``data`` with the vocabulary's item count replaced."""
    key = b"tokenizer.ggml.tokens"
    at = data.index(key) + len(key) + 8  # past the value type and the item type
    return data[:at] + struct.pack("<Q", count) + data[at + 8 :]


def test_a_string_array_that_never_ends_costs_at_most_the_cap(gemma_model: Path) -> None:
    """A vocabulary claiming a billion tokens, in a 'file' of 100 GB full of token texts."""
    data = gemma_model.read_bytes()[:6_000_000]
    hostile = _with_token_count(data[: data.index(b"tokenizer.ggml.scores") - 8], 10**9)
    served = Served(hostile, tail=struct.pack("<Q", 5) + b"hello")
    with pytest.raises(InvalidModelError) as caught:
        read_header_in_ranges(served, "hostile.gguf", 100 * 10**9)
    assert "longer than the 8 MiB" in str(caught.value)
    assert served.sent <= HARD_CAP


def test_huge_counts_are_refused_before_reading(gemma_model: Path) -> None:
    data = gemma_model.read_bytes()[:65536]
    served = Served(_with_token_count(data, 1 << 62))
    with pytest.raises(InvalidModelError, match="claims"):
        read_header_in_ranges(served, "hostile.gguf", 300 << 20)
    assert served.sent <= 256 << 10


def test_zero_filled_file_after_the_header_start_is_capped(gemma_model: Path) -> None:
    """Metadata that runs into zeros (a lying size with nothing behind it) ends in a sentence."""
    data = gemma_model.read_bytes()[:1_000_000]
    served = Served(data, tail=b"\0")
    with pytest.raises(InvalidModelError) as caught:
        read_header_in_ranges(served, "zeros.gguf", 50 * 10**9)
    assert len(str(caught.value)) <= 300
    assert served.sent <= HARD_CAP


def test_short_answers_are_a_sentence(gemma_model: Path) -> None:
    data = gemma_model.read_bytes()[:1000]
    with pytest.raises(InvalidModelError, match=r"the Hub sent \d+ bytes where \d+ were asked for"):
        read_header_in_ranges(Served(data), "short.gguf", 300 << 20)
