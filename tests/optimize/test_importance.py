"""The importance matrix measured through llama.cpp's evaluation callback, checked against the same
statistic computed independently from the file's weights, saved, reloaded and used to quantize."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama import imatrix, quantize
from slmdesk.llama.scoring import ModelRunner
from slmdesk.models.quant_types import QUANT_TYPES

TEXTS = [
    "the sun was out and the wind was up, so they all went to the sea. " * 12,
    "she said that it was one of the best days of the year, and he did not say no. " * 8,
]
CHUNK = 96


def _measure(model: Path) -> imatrix.ImportanceMatrix:
    return imatrix.measure_importance(
        lambda callback: ModelRunner(model, 256, 2, eval_callback=callback), TEXTS, CHUNK
    )


def _tokens(model: Path) -> list[np.ndarray]:
    with ModelRunner(model, 256, 2) as runner:
        chunks = []
        for text in TEXTS:
            ids = runner.tokenize(text)
            chunks += [ids[s : s + CHUNK] for s in range(0, len(ids), CHUNK) if len(ids) - s >= 8]
        return chunks


def _expected_first_query_importance(model: Path, chunks: list[np.ndarray]) -> np.ndarray:
    """Mean over tokens of (RMSNorm(embedding) * attn_norm)^2: the input of blk.0.attn_q."""
    reader = gguf.GGUFReader(str(model))
    tensors = {t.name: np.asarray(t.data, dtype=np.float32) for t in reader.tensors}
    eps_field = reader.get_field("llama.attention.layer_norm_rms_epsilon")
    eps = float(eps_field.contents()) if eps_field is not None else 1e-5
    embedding = tensors["token_embd.weight"]
    norm = tensors["blk.0.attn_norm.weight"].reshape(-1)
    rows = embedding[np.concatenate(chunks)]
    normed = rows / np.sqrt(np.mean(rows**2, axis=1, keepdims=True) + eps) * norm
    return np.mean(normed.astype(np.float64) ** 2, axis=0)


def test_measured_importance_matches_the_statistic_computed_from_the_weights(
    tiny_model: Path,
) -> None:
    matrix = _measure(tiny_model)
    chunks = _tokens(tiny_model)
    expected = _expected_first_query_importance(tiny_model, chunks)

    means = matrix.means()
    assert matrix.counts["blk.0.attn_q.weight"] == sum(len(c) for c in chunks)
    np.testing.assert_allclose(means["blk.0.attn_q.weight"], expected, rtol=2e-3)
    # Every weight multiplication of every block was seen, with its input width.
    for block in range(4):
        for part, width in [("attn_q", 256), ("attn_k", 256), ("ffn_up", 256), ("ffn_down", 512)]:
            assert means[f"blk.{block}.{part}.weight"].shape == (width,)
    assert all(np.all(np.isfinite(v)) and np.all(v >= 0) for v in means.values())


def test_the_importance_file_round_trips_and_hostile_files_are_refused(
    tiny_model: Path, tmp_path: Path
) -> None:
    matrix = _measure(tiny_model)
    path = tmp_path / "tiny.imatrix.gguf"
    imatrix.save_importance(matrix, path, "calibration")
    again = imatrix.load_importance(path)
    assert again.chunks == matrix.chunks
    for name, values in matrix.means().items():
        np.testing.assert_allclose(again.means()[name], values, rtol=1e-6)

    truncated = tmp_path / "truncated.imatrix.gguf"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SlmdeskError, match="importance matrix"):
        imatrix.load_importance(truncated)

    negative = imatrix.ImportanceMatrix(
        sums={"blk.0.attn_q.weight": -np.ones(256)}, counts={"blk.0.attn_q.weight": 1}, chunks=1
    )
    bad = tmp_path / "negative.imatrix.gguf"
    imatrix.save_importance(negative, bad, "calibration")
    with pytest.raises(SlmdeskError, match="invalid values"):
        imatrix.load_importance(bad)


def test_importance_unlocks_the_lowest_bit_types(tiny_model: Path, tmp_path: Path) -> None:
    iq2 = QUANT_TYPES["IQ2_XXS"].ftype
    quantize.install_log(False)
    with pytest.raises(SlmdeskError):
        quantize.quantize_file(str(tiny_model), str(tmp_path / "plain.gguf"), iq2)

    means = _measure(tiny_model).means()
    quantize.start_capture()
    quantize.quantize_file(str(tiny_model), str(tmp_path / "iq2.gguf"), iq2, importance=means)
    log_text = quantize.stop_capture()
    assert f"importance matrix data with {len(means)} entries" in log_text
    with ModelRunner(tmp_path / "iq2.gguf", 256, 2) as runner:
        assert len(runner.tokenize("the sun was out")) > 1


def test_embedding_and_output_types_are_chosen_apart_from_the_rest(
    tiny_model: Path, tmp_path: Path
) -> None:
    q4 = QUANT_TYPES["Q4_K_M"].ftype
    quantize.install_log(False)
    out = tmp_path / "mixed.gguf"
    quantize.quantize_file(
        str(tiny_model),
        str(out),
        q4,
        embedding_type=int(gguf.GGMLQuantizationType.Q8_0),
        output_type=int(gguf.GGMLQuantizationType.Q3_K),
    )
    types = {t.name: t.tensor_type for t in gguf.GGUFReader(str(out)).tensors}
    assert types["token_embd.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert types["output.weight"] == gguf.GGMLQuantizationType.Q3_K
    assert types["blk.0.attn_q.weight"] in (
        gguf.GGMLQuantizationType.Q4_K,
        gguf.GGMLQuantizationType.Q5_K,
        gguf.GGMLQuantizationType.Q6_K,
    )


def test_a_type_whose_blocks_do_not_divide_the_rows_is_refused_not_aborted(
    tmp_path: Path,
) -> None:
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    # 320-wide rows: Q8_0's 32-value blocks divide them, the K-quants' 256-value blocks do not
    model = write_tiny_llama(
        tmp_path / "narrow.gguf", TinyModelSpec(n_embd=320, n_head=5, n_head_kv=5)
    )
    q8 = QUANT_TYPES["Q8_0"].ftype
    quantize.install_log(False)
    with pytest.raises(SlmdeskError, match="multiple of the type's 256-value blocks"):
        quantize.quantize_file(
            str(model),
            str(tmp_path / "k.gguf"),
            q8,
            embedding_type=int(gguf.GGMLQuantizationType.Q6_K),
        )
    assert not (tmp_path / "k.gguf").exists()
