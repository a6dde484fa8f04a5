"""`slmdesk optimize MODEL --fit-size / --max-kld` run as a user would, on the tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

from slmdesk.optimize.pipeline import size_preview
from tests.cli.clirun import assert_clean_failure, run_cli

TIMEOUT = 900  # a loaded 2-core machine: each build and score takes seconds


def _predicted(model: Path, *types: str) -> dict[str, int]:
    return {o.name: o.predicted_size_bytes for o in size_preview(model, types)}


def test_fit_size_builds_only_candidates_that_can_meet_it(tiny_model: Path) -> None:
    sizes = _predicted(tiny_model, "Q8_0", "Q4_K_M")
    bound = (sizes["Q8_0"] + sizes["Q4_K_M"]) // 2  # Q8_0 cannot meet it, Q4_K_M can
    out = run_cli(
        "optimize",
        str(tiny_model),
        "--fit-size",
        str(bound),
        "--fit-types",
        "Q8_0,Q4_K_M,Q2_K",
        "--no-imatrix",
        "--max-builds",
        "2",
        "--json",
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    by_type = {o["type"]: o for o in data["front"]}
    assert not by_type["Q8_0"]["built"] and "above" in by_type["Q8_0"]["reason"]
    winner = data["winner"]
    assert winner["built"] and winner["size_bytes"] <= bound
    assert winner["type"] == "Q4_K_M"  # the largest that fits: the lowest KLD
    built = [o for o in data["front"] if o["built"]]
    assert all(o["size_bytes"] <= bound for o in built)
    assert winner["kld_mean"] == min(o["kld_mean"] for o in built)
    for key in ("kld_p99", "top1_agreement", "vocabulary", "pruned_blocks", "embedding_type"):
        assert key in winner
    path = Path(data["path"])
    assert path.exists() and path.stat().st_size == winner["size_bytes"]
    assert data["reason"].startswith("Q4_K_M") and "lowest KLD" in data["reason"]
    assert data["elapsed_seconds"] > 0
    listed = json.loads(run_cli("models", "list", "--json").stdout)
    assert data["name"] in {m["name"] for m in listed["models"]}
    assert "Q4_K_M" in out.stderr  # one line per measured candidate on stderr
    _assert_no_leftovers(path.parent)


def test_max_kld_with_a_loose_bound_takes_the_smallest(tiny_model: Path) -> None:
    out = run_cli(
        "optimize",
        str(tiny_model),
        "--max-kld",
        "5",
        "--fit-types",
        "Q4_K_M,Q2_K",
        "--max-builds",
        "3",
        "--json",
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    built = [o for o in data["front"] if o["built"]]
    assert built and all(o["kld_mean"] <= 5 for o in built)
    winner = data["winner"]
    assert winner["size_bytes"] == min(o["size_bytes"] for o in built)
    # The smallest candidate of the space is made with the importance matrix.
    smallest = min(data["front"], key=lambda o: o["predicted_size_bytes"] or 1 << 62)
    assert smallest["imatrix"] and smallest["type"] == "Q2_K"
    assert "KLD ≤ 5" in data["reason"]
    assert Path(data["path"]).exists()


def test_an_impossible_target_says_so_and_names_the_closest(tiny_model: Path) -> None:
    out = run_cli(
        "optimize",
        str(tiny_model),
        "--max-kld",
        "0.0000001",
        "--fit-types",
        "Q2_K",
        "--no-imatrix",
        "--max-builds",
        "1",
        timeout=TIMEOUT,
    )
    line = assert_clean_failure(out, "No candidate meets", "closest", "Q2_K", after_progress=True)
    assert "KLD" in line
    models = Path(os.environ["SLMDESK_HOME"]) / "models"
    assert not list(models.glob("*.gguf")) if models.exists() else True
    _assert_no_leftovers(models)


def test_fit_options_are_checked_before_any_work(tiny_model: Path) -> None:
    bad = run_cli("optimize", str(tiny_model), "--fit-size", "big")
    assert_clean_failure(bad, "not a size")
    neither = run_cli("optimize", str(tiny_model))
    assert neither.returncode == 2 and "--quant" in neither.stderr
    negative = run_cli("optimize", str(tiny_model), "--max-kld", "-1")
    assert_clean_failure(negative, "above 0")
    unknown = run_cli("optimize", str(tiny_model), "--max-kld", "1", "--fit-types", "Q9")
    assert_clean_failure(unknown, "--fit-types")


def _assert_no_leftovers(models: Path) -> None:
    home = Path(os.environ["SLMDESK_HOME"])
    hidden = [p for p in models.glob(".*")] if models.exists() else []
    assert not [p for p in hidden if "partial" in p.name or "optimizing" in p.name]
    assert not list(home.rglob("fit-*")), list(home.rglob("fit-*"))
