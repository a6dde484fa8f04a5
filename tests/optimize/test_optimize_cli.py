"""`slmdesk optimize` and `slmdesk eval` run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )


def test_optimize_and_eval_json(tiny_model: Path, short_text_file: Path) -> None:
    out = run_cli("optimize", str(tiny_model), "--quant", "Q8_0", "--prune-layers", "2", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    path = Path(data["path"])
    assert path.exists() and data["report"]["removed_blocks"] == [2]
    assert data["report"]["eval"]["n_tokens_scored"] > 0
    assert "recommendation" in data["report"]["comparison"]

    ev = run_cli(
        "eval", str(path), "--reference", str(tiny_model), "--text", str(short_text_file), "--json"
    )
    assert ev.returncode == 0, ev.stderr
    figures = json.loads(ev.stdout)
    for key in (
        "kld_mean",
        "kld_p99",
        "top1_agreement",
        "ppl",
        "ppl_reference",
        "tokens_per_second",
    ):
        assert isinstance(figures[key], float)
    assert figures["tokens_per_second_reference"] > 0

    again = run_cli("optimize", str(tiny_model), "--quant", "Q8_0", "--prune-layers", "2")
    assert again.returncode == 1 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quant", "Q9"], "Unknown quantization type"),
        (["--quant", "IQ1_S", "--no-imatrix"], "importance matrix"),
        (["--quant", "Q8_0", "--embedding-type", "Q9"], "Unknown tensor type 'Q9'"),
        (["--quant", "Q8_0", "--prune-layers", "0,1,2,3"], "at least one must remain"),
        (["--quant", "Q8_0", "--prune-layers", "1,1"], "twice"),
        (["--quant", "Q8_0", "--prune-layers", "9"], "out of range"),
        (["--quant", "Q8_0", "--prune", "4"], "choose 1 to 3"),
    ],
)
def test_optimize_bad_input(tiny_model: Path, args: list[str], message: str) -> None:
    out = run_cli("optimize", str(tiny_model), *args)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert "Traceback" not in out.stderr


def test_optimize_refuses_a_non_gguf_file(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_text("hello", encoding="utf-8")
    out = run_cli("optimize", str(fake), "--quant", "Q8_0")
    assert out.returncode == 1 and "not a GGUF" in out.stderr


def test_optimize_warns_when_the_type_would_grow_the_file(tiny_model: Path, tmp_path: Path) -> None:
    from slmdesk.optimize.pipeline import quantize

    q4 = quantize(tiny_model, tmp_path / "tiny-q4.gguf", "Q4_K_M")
    out = run_cli("optimize", str(q4), "--quant", "Q8_0", "--no-eval", "--name", "grown")
    assert out.returncode == 0, out.stderr
    assert "warning: Q8_0 would make this model" in out.stderr
    assert "larger than its Q4_K_M source" in out.stderr
    assert out.stdout.count("would make this model") == 0  # said once, before the work
    data = run_cli(
        "optimize", str(q4), "--quant", "Q8_0", "--no-eval", "--name", "grown2", "--json"
    )
    assert data.returncode == 0, data.stderr
    report = json.loads(data.stdout)["report"]
    assert report["size_check"]["predicted_size_bytes"] > report["size_check"]["source_size_bytes"]
    assert "larger than its Q4_K_M source" in report["size_check"]["warning"]
    assert report["size_before"] < report["size_after"]  # the old fields keep their meaning


def test_optimize_plan_choices_in_json_and_the_type_listing(
    tiny_model: Path, short_text_file: Path
) -> None:
    out = run_cli(
        "optimize",
        str(tiny_model),
        "--quant",
        "Q3_K_M",
        "--embedding-type",
        "q8_0",
        "--output-type",
        "Q6_K",
        "--calibration",
        str(short_text_file),
        "--no-eval",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)["report"]
    assert report["imatrix"] is True
    assert (report["embedding_type"], report["output_type"]) == ("Q8_0", "Q6_K")
    assert abs(report["size_check"]["predicted_size_bytes"] - report["size_after"]) < (
        0.02 * report["size_after"]
    )

    plain = run_cli(
        "optimize", str(tiny_model), "--quant", "Q3_K_M", "--no-imatrix", "--no-eval", "--name", "p"
    )
    assert plain.returncode == 0, plain.stderr
    assert "importance matrix: no; embedding type default; output type default" in plain.stdout

    listing = run_cli("optimize", str(tiny_model), "--list-types", "--json")
    assert listing.returncode == 0, listing.stderr
    types = {t["name"]: t for t in json.loads(listing.stdout)["types"]}
    assert types["IQ2_XXS"]["uses_imatrix"] and types["IQ2_XXS"]["available"]
    assert not types["Q8_0"]["uses_imatrix"]
    table = run_cli("optimize", str(tiny_model), "--list-types", "--no-imatrix")
    assert table.returncode == 0 and "IQ2_XXS" not in table.stdout and "imatrix" in table.stdout

    missing = run_cli("optimize", str(tiny_model))
    assert missing.returncode == 2 and "--quant" in missing.stderr
