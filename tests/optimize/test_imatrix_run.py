"""The importance matrix in an optimize run: measured once per model and calibration text, reused,
passed to the quantizer; the types that need one become available with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize import pipeline as opt


def _importance_files() -> list[Path]:
    folder = paths.cache_dir() / "importance"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_low_bit_k_quant_is_made_with_an_importance_matrix_measured_once(
    tiny_model: Path, short_text_file: Path
) -> None:
    stages: list[str] = []
    first = opt.optimize(
        opt.OptimizeRequest(
            tiny_model, "Q3_K_M", calibration=short_text_file, name="a", evaluate=False
        ),
        progress=lambda p: stages.append(p.stage),
    )
    assert first.report["imatrix"] is True
    assert first.report["importance"]["reused"] is False
    assert "importance" in stages
    files = _importance_files()
    assert [f.suffix for f in files] == [".imatrix"]
    stamp = files[0].stat().st_mtime_ns

    stages.clear()
    second = opt.optimize(
        opt.OptimizeRequest(
            tiny_model, "IQ2_XXS", calibration=short_text_file, name="b", evaluate=False
        ),
        progress=lambda p: stages.append(p.stage),
    )
    assert second.report["imatrix"] is True and second.report["type"] == "IQ2_XXS"
    assert second.report["importance"]["reused"] is True
    assert "importance" not in stages
    assert _importance_files() == files and files[0].stat().st_mtime_ns == stamp
    assert second.path.stat().st_size < first.path.stat().st_size


def test_the_importance_matrix_changes_the_quantized_weights(
    tiny_model: Path, short_text_file: Path
) -> None:
    def build(name: str, imatrix: bool) -> bytes:
        result = opt.optimize(
            opt.OptimizeRequest(
                tiny_model,
                "Q2_K",
                calibration=short_text_file,
                name=name,
                evaluate=False,
                imatrix=imatrix,
            )
        )
        assert result.report["imatrix"] is imatrix
        return result.path.read_bytes()

    with_matrix, without = build("with", True), build("without", False)
    assert len(with_matrix) == len(without)
    assert with_matrix != without


def test_defaults_and_refusals(tiny_model: Path) -> None:
    q8 = opt.optimize(opt.OptimizeRequest(tiny_model, "Q8_0", name="q8", evaluate=False))
    assert q8.report["imatrix"] is False and q8.report["importance"] is None
    assert _importance_files() == []
    with pytest.raises(SlmdeskError, match="IQ1_S needs an importance matrix"):
        opt.optimize(opt.OptimizeRequest(tiny_model, "IQ1_S", imatrix=False))

    preview = {o.name: o for o in opt.size_preview(tiny_model)}
    assert preview["IQ2_XXS"].available and preview["IQ2_XXS"].uses_imatrix
    assert preview["Q4_K_M"].uses_imatrix and not preview["Q6_K"].uses_imatrix
    without = {o.name: o for o in opt.size_preview(tiny_model, imatrix=False)}
    assert "IQ2_XXS" not in without and not without["Q4_K_M"].uses_imatrix
