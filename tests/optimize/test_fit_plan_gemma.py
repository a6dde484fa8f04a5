"""Gemma 3 270M through ``slmdesk optimize --json``: IQ4_XS with an importance matrix and a Q5_0
embedding (tied: also the output), the predicted size against the written file, and the
importance matrix reused by a second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slmdesk.models.gguf_info import read_gguf_info

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _optimize(model: Path, name: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "slmdesk",
            "optimize",
            str(model),
            "--quant",
            "IQ4_XS",
            "--embedding-type",
            "Q5_0",
            "--no-eval",
            "--name",
            name,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# Measuring the importance matrix reads the calibration set through the model: minutes on a
# loaded two-core machine.
@pytest.mark.timeout(3600)
def test_gemma_iq4_xs_with_imatrix_and_q5_0_embedding(gemma_model: Path) -> None:
    first = _optimize(gemma_model, "gemma-fit-a")
    report = first["report"]
    path = Path(first["path"])
    assert report["imatrix"] is True and report["importance"]["reused"] is False
    assert report["type"] == "IQ4_XS" and report["embedding_type"] == "Q5_0"
    assert report["size_after"] == path.stat().st_size
    predicted = report["size_check"]["predicted_size_bytes"]
    assert abs(predicted - report["size_after"]) / report["size_after"] < 0.02
    types = {t.name: t.type_name for t in read_gguf_info(path).tensors}
    assert "output.weight" not in types and types["token_embd.weight"] == "Q5_0"
    assert report["size_after"] < 0.8 * report["size_before"]

    matrix = Path(report["importance"]["path"])
    stamp = matrix.stat().st_mtime_ns
    second = _optimize(gemma_model, "gemma-fit-b")["report"]
    assert second["importance"]["reused"] is True
    assert second["importance"]["path"] == str(matrix) and matrix.stat().st_mtime_ns == stamp
    assert second["size_after"] == report["size_after"]
