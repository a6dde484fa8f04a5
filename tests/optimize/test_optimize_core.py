"""Quantize, prune, plan and evaluate on the tiny real model, with real llama.cpp children."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import numpy as np
import pytest

from slmdesk.common.errors import InvalidModelError, SlmdeskError
from slmdesk.llama.scoring import ModelRunner
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.optimize import pipeline as opt
from slmdesk.optimize.child.scoring import build_reference, evaluate_in_process, make_chunks
from slmdesk.optimize.evaluate import (
    LOGQ_CUTOFF,
)
from slmdesk.optimize.worker_process import OptimizeCancelled, WorkerCrashed, run_worker


def test_quantize_q4_k_m_with_pruning_loads_and_generates(tiny_model: Path, tmp_path: Path) -> None:
    seen: list[opt.Progress] = []
    out = opt.quantize(tiny_model, tmp_path / "out.gguf", "Q4_K_M", [1], progress=seen.append)
    info = read_gguf_info(out)
    assert info.block_count == 3
    assert info.quantization == "Q4_K_M"
    assert not any(t.name.startswith("blk.3.") for t in info.tensors)
    assert seen and seen[-1].done == seen[-1].total  # per-tensor progress from llama.cpp's log
    assert not list(tmp_path.glob(".*partial*"))
    with ModelRunner(out, 64) as runner:
        assert runner.decode_speed(runner.tokenize("the sun was out"), 4) > 0


def test_quantize_progress_is_a_percentage_of_the_work(tiny_model: Path, tmp_path: Path) -> None:
    """Each tensor is reported as it starts and as it ends, weighted by its size: the share
    moves from 0 to 1 and a large tensor moves it more than a small one."""
    seen: list[opt.Progress] = []
    opt.quantize(tiny_model, tmp_path / "out.gguf", "Q4_K_M", [1], progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert all(f is not None for f in fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)  # never goes back
    info = read_gguf_info(tiny_model)
    sizes = {t.name: t.n_elements for t in info.tensors}
    steps = {}  # the share each finished tensor added
    for before, after in itertools.pairwise(seen):
        if after.done == before.done + 1 and after.detail == before.detail:
            steps[after.detail] = after.fraction - before.fraction
    assert steps["token_embd.weight"] > 50 * steps["output_norm.weight"]
    assert steps["token_embd.weight"] == pytest.approx(
        sizes["token_embd.weight"]
        / sum(n for name, n in sizes.items() if not name.startswith("blk.1.")),
        rel=0.3,
    )


def test_size_preview_predicts_real_sizes(tiny_model: Path, tmp_path: Path) -> None:
    preview = {o.name: o for o in opt.size_preview(tiny_model, ["Q8_0", "Q4_K_M", "F16"])}
    for name in ("Q8_0", "Q4_K_M"):
        real = opt.quantize(tiny_model, tmp_path / f"{name}.gguf", name).stat().st_size
        assert abs(preview[name].predicted_size_bytes - real) / real < 0.02
        assert preview[name].verdict in {"fits", "tight", "too big"}
    assert preview["Q4_K_M"].ppl_increase == pytest.approx(0.1754)


def _naive_kld(model: Path, reference: Path, text: str) -> tuple[float, float]:
    """Second method: dense float64 log-softmax of every position, then llama.cpp's formula."""

    def all_logits(path: Path, chunk: np.ndarray) -> np.ndarray:
        with ModelRunner(path, len(chunk)) as runner:
            rows = [r for _, r in runner.chunk_logits(chunk, 0)]
        return np.concatenate(rows).astype(np.float64)

    with ModelRunner(reference, 1024) as r:
        chunks = make_chunks(r.tokenize(text), r.add_bos, r.bos)
    klds: list[float] = []
    same = 0
    for chunk in chunks:
        first = len(chunk) // 2
        p = all_logits(model, chunk)[first:]
        q = all_logits(reference, chunk)[first:]
        for i in range(len(p)):
            lp = p[i] - p[i].max()
            lp -= np.log(np.exp(lp).sum())
            lq = q[i] - q[i].max()
            lq -= np.log(np.exp(lq).sum())
            mask = lq > LOGQ_CUTOFF
            klds.append(float(np.sum(np.exp(lq[mask]) * (lq[mask] - lp[mask]))))
            same += int(lp.argmax() == lq.argmax())
    return float(np.mean(klds)), same / len(klds)


def test_kld_agrees_with_a_naive_implementation(
    tiny_model: Path, tmp_path: Path, short_text: str
) -> None:
    quantized = opt.quantize(tiny_model, tmp_path / "q.gguf", "Q3_K_M")
    report = evaluate_in_process(quantized, tiny_model, short_text, measure_speed=False)
    kld, top1 = _naive_kld(quantized, tiny_model, short_text)
    assert report.kld_mean > 0
    assert report.kld_mean == pytest.approx(kld, abs=1e-3)
    assert report.top1_agreement == pytest.approx(top1, abs=1e-3)
    assert report.kld_p99 >= report.kld_median
    # a model against itself: no divergence, full agreement, same perplexity
    same = evaluate_in_process(tiny_model, tiny_model, short_text, measure_speed=False)
    assert same.kld_mean == pytest.approx(0, abs=1e-4)
    assert same.top1_agreement == 1.0
    assert same.ppl == pytest.approx(same.ppl_reference, rel=1e-4)


def test_reference_keeps_only_what_the_kld_needs(tiny_model: Path, short_text: str) -> None:
    ref = build_reference(tiny_model, short_text)
    n_scored = sum(len(rows) for rows in ref.rows)
    assert n_scored == sum(len(c) - 1 - len(c) // 2 for c in ref.chunks)
    assert all((row.logq > LOGQ_CUTOFF).all() for rows in ref.rows for row in rows)


def test_plan_then_optimize_registers_provenance(tiny_model: Path, short_text_file: Path) -> None:
    plan = opt.plan_pruning(tiny_model, 1, short_text_file)
    assert len(plan.importance) == 4 and all(v > 0 for v in plan.importance)
    assert plan.removed == [int(np.argmin(plan.importance))]
    result = opt.optimize(
        opt.OptimizeRequest(
            source=tiny_model,
            quant="Q8_0",
            prune_count=1,
            calibration=short_text_file,
            name="tiny-small",
            compare=False,
        )
    )
    assert result.path.exists() and result.name == "tiny-small"
    assert read_gguf_info(result.path).block_count == 3
    from slmdesk.models.library import Library

    entry = Library().get("tiny-small")
    assert entry.provenance["removed_blocks"] == plan.removed
    assert entry.provenance["type"] == "Q8_0"
    assert len(entry.provenance["calibration_sha256"]) == 64
    assert entry.provenance["report"]["eval"]["kld_mean"] > 0


def test_each_block_importance_is_reported_as_it_is_measured(
    tiny_model: Path, short_text_file: Path
) -> None:
    steps: list[opt.Progress] = []
    plan = opt.plan_pruning(tiny_model, 0, short_text_file, progress=steps.append)
    singles = [p for p in steps if len(p.blocks) == 1]
    assert [p.blocks[0] for p in singles] == [0, 1, 2, 3]
    assert [p.kld_mean for p in singles] == pytest.approx(plan.importance)
    assert [p.done for p in singles] == [1, 2, 3, 4]  # one report per block, as it comes


def test_measured_importance_is_reused_not_measured_again(
    tiny_model: Path, short_text_file: Path
) -> None:
    first = opt.plan_pruning(tiny_model, 0, short_text_file)
    steps: list[opt.Progress] = []
    plan = opt.plan_pruning(
        tiny_model, 2, short_text_file, progress=steps.append, importance=first.importance
    )
    fresh = opt.plan_pruning(tiny_model, 2, short_text_file)
    assert plan.removed == fresh.removed
    assert plan.importance == pytest.approx(first.importance)
    scored = [p.detail for p in steps if p.stage == "planning" and p.detail.startswith("blocks")]
    assert scored and all("," in d for d in scored)  # only sets of two were scored
    with pytest.raises(SlmdeskError, match="Measure it again"):
        opt.plan_pruning(tiny_model, 1, short_text_file, importance=[1.0, 2.0])


def test_cancel_mid_run_leaves_no_partial_file(tiny_model: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    seen: list[opt.Progress] = []
    with pytest.raises(OptimizeCancelled):
        opt.quantize(
            tiny_model,
            out_dir / "x.gguf",
            "Q4_K_M",
            progress=seen.append,
            cancel=lambda: bool(seen),
        )
    assert seen
    assert list(out_dir.iterdir()) == []


def test_child_crash_gives_a_message_and_the_parent_lives(tmp_path: Path) -> None:
    """The child reads a FIFO nobody writes, so it cannot finish before it is killed."""
    import os
    import signal
    import threading

    import psutil

    from slmdesk.optimize.worker_process import WORKER_MODULE

    fifo = tmp_path / "never-written.gguf"
    os.mkfifo(fifo)
    me = psutil.Process()

    def kill_worker() -> None:
        for _ in range(6000):  # a condition wait: the child appears once run_worker starts it
            for child in me.children():
                with contextlib.suppress(psutil.Error):
                    if WORKER_MODULE in " ".join(child.cmdline()):
                        os.kill(child.pid, signal.SIGKILL)
                        return
            threading.Event().wait(0.01)

    killer = threading.Thread(target=kill_worker, daemon=True)
    killer.start()
    try:
        with pytest.raises(WorkerCrashed, match="killed by signal"):
            run_worker({"kind": "dry_run", "source": str(fifo), "ftypes": {"a": 7}})
    finally:
        with contextlib.suppress(OSError):  # unblock a child still reading, whatever happened
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    killer.join(timeout=30)
    assert run_worker({"kind": "dry_run", "source": "missing.gguf", "ftypes": {}}) == {"types": {}}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([0, 1, 2, 3], "at least one must remain"),
        ([-1], "negative"),
        ([4], "out of range"),
        ([1, 1], "twice"),
        (["x"], "not a whole number"),
    ],
)
def test_bad_prune_lists(tiny_model: Path, tmp_path: Path, layers: list, message: str) -> None:
    with pytest.raises(SlmdeskError, match=message):
        opt.quantize(tiny_model, tmp_path / "o.gguf", "Q8_0", layers)
    assert not (tmp_path / "o.gguf").exists()


def test_bad_types_source_and_output(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(SlmdeskError, match="Unknown quantization type"):
        opt.quantize(tiny_model, tmp_path / "o.gguf", "Q9_Z")
    with pytest.raises(SlmdeskError, match="importance matrix"):
        opt.quantize(tiny_model, tmp_path / "o.gguf", "IQ2_XS")
    text = tmp_path / "notes.gguf"
    text.write_text("not a model", encoding="utf-8")
    with pytest.raises(InvalidModelError, match="not a GGUF"):
        opt.quantize(text, tmp_path / "o.gguf", "Q8_0")
    existing = tmp_path / "exists.gguf"
    existing.write_bytes(b"keep me")
    with pytest.raises(SlmdeskError, match="already exists"):
        opt.quantize(tiny_model, existing, "Q8_0")
    assert existing.read_bytes() == b"keep me"


def test_disk_too_small(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Demand more headroom than any disk has: the real free-space check must refuse.
    monkeypatch.setattr(opt, "DISK_MARGIN_BYTES", 1 << 62)
    with pytest.raises(SlmdeskError, match="Not enough disk space"):
        opt.quantize(tiny_model, tmp_path / "o.gguf", "Q8_0")
    assert list(tmp_path.glob("*o.gguf*")) == []


def test_requantize_warning(tiny_model: Path, tmp_path: Path) -> None:
    assert opt.requantize_warning(read_gguf_info(tiny_model)) is None
    q = opt.quantize(tiny_model, tmp_path / "q.gguf", "Q8_0")
    warning = opt.requantize_warning(read_gguf_info(q))
    assert warning and "already quantized" in warning


@pytest.mark.parametrize("blocks", [(1,), (0, 2)])
def test_silencing_blocks_scores_the_same_as_removing_them(
    tiny_model: Path, short_text: str, tmp_path: Path, blocks: tuple[int, ...]
) -> None:
    """The search scores candidates by silencing blocks in one working copy; that must measure
    exactly what a really pruned file measures."""
    from slmdesk.optimize.child.convert import prune_and_fix
    from slmdesk.optimize.child.plan import SilencedBlocks
    from slmdesk.optimize.child.scoring import score_model

    reference = build_reference(tiny_model, short_text)
    pruned = tmp_path / "pruned.gguf"
    prune_and_fix(str(tiny_model), str(pruned), 1, blocks, True, True, 2)
    removed, _ = score_model(pruned, reference)
    work = tmp_path / "work"
    work.mkdir()
    silencer = SilencedBlocks.create(str(tiny_model), read_gguf_info(tiny_model), work)
    assert silencer is not None
    before = silencer.path.read_bytes()
    with silencer.silenced(blocks) as candidate:
        silenced, _ = score_model(candidate, reference)
    assert silencer.path.read_bytes() == before  # restored for the next candidate
    assert silenced["kld_mean"] == pytest.approx(removed["kld_mean"], abs=1e-3)
    assert silenced["top1_agreement"] == pytest.approx(removed["top1_agreement"], abs=1e-3)
    assert removed["kld_mean"] > 0.001  # removing a block changes the model
