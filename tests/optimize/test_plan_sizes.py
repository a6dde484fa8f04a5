"""Predicted sizes of plans (type, embedding and output types, pruning, vocabulary) against real
files, and impossible tensor types refused before any work."""

from __future__ import annotations

import re
from pathlib import Path

import psutil
import pytest

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama
from slmdesk.optimize import pipeline as opt
from slmdesk.optimize.sizes import predicted_bytes, tensor_bytes, vocabulary_size


@pytest.mark.parametrize(
    ("quant", "embedding", "output", "removed"),
    [
        ("Q4_K_M", "Q8_0", "Q4_0", [1]),
        ("Q3_K_M", None, "Q6_K", []),
        ("Q8_0", "Q4_K", None, [0, 2]),
        ("IQ4_XS", "IQ4_NL", "Q5_0", []),
    ],
)
def test_predicted_bytes_match_built_files(
    tiny_model: Path,
    tmp_path: Path,
    quant: str,
    embedding: str | None,
    output: str | None,
    removed: list[int],
) -> None:
    info = read_gguf_info(tiny_model)
    tables = opt.tensor_type_tables(tiny_model, [quant])
    predicted = predicted_bytes(info, tables[quant]["tensor_types"], embedding, output, removed)
    built = opt.quantize(
        tiny_model,
        tmp_path / "built.gguf",
        quant,
        removed,
        embedding_type=embedding,
        output_type=output,
    )
    real = built.stat().st_size
    assert abs(predicted - real) / real < 0.02, (predicted, real)
    written = {t.name: t.type_name for t in read_gguf_info(built).tensors}
    if embedding:
        assert written["token_embd.weight"] == embedding
    if output:
        assert written["output.weight"] == output


def test_the_chosen_embedding_type_changes_the_preview_by_the_tensor_size(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    embedding = next(t for t in info.tensors if t.name == "token_embd.weight")
    plain = opt.size_preview(tiny_model, ["Q8_0"])[0]
    smaller = opt.size_preview(tiny_model, ["Q8_0"], embedding_type="Q4_0")[0]
    saved = tensor_bytes(embedding.n_elements, "Q8_0") - tensor_bytes(embedding.n_elements, "Q4_0")
    assert plain.predicted_size_bytes - smaller.predicted_size_bytes == pytest.approx(saved, abs=64)


def test_a_smaller_vocabulary_shrinks_the_embedding_output_and_tokenizer(tiny_model: Path) -> None:
    info = read_gguf_info(tiny_model)
    types = {"token_embd.weight": "Q8_0", "output.weight": "Q8_0"}
    n_vocab = vocabulary_size(info)
    full = predicted_bytes(info, types)
    assert predicted_bytes(info, types, vocab_kept=n_vocab) == full
    half = predicted_bytes(info, types, vocab_kept=n_vocab // 2)
    rows = 2 * tensor_bytes(n_vocab * info.embedding_length, "Q8_0")
    assert full - half >= rows // 2 - 1024  # the two matrices lose half their rows
    assert full - half < rows // 2 + info.data_offset  # and the header no more than itself


def test_a_type_the_rows_cannot_hold_is_refused_before_any_work(tmp_path: Path) -> None:
    # 320-wide rows: 32-value blocks fit, the K-quants' 256-value blocks do not.
    model = write_tiny_llama(tmp_path / "narrow-F16.gguf", TinyModelSpec(n_embd=320, n_head=4))
    sentence = "Q4_K cannot hold token_embd.weight: its rows of 320 values are not a multiple"
    children_before = psutil.Process().children()
    with pytest.raises(SlmdeskError, match=re.escape(sentence)):
        opt.size_preview(model, ["Q8_0"], embedding_type="Q4_K")
    with pytest.raises(SlmdeskError, match=r"Q6_K cannot hold output\.weight"):
        opt.optimize(opt.OptimizeRequest(model, "Q8_0", output_type="Q6_K"))
    with pytest.raises(SlmdeskError, match="Unknown tensor type 'Q9_9'"):
        opt.optimize(opt.OptimizeRequest(model, "Q8_0", embedding_type="Q9_9"))
    assert psutil.Process().children() == children_before
    assert not (paths.cache_dir() / "importance").exists()
    assert opt.size_preview(model, ["Q8_0"], embedding_type="Q5_0")[0].available
