"""The guided pruning search, run in the optimizer child: score every candidate block (and runs
of neighbouring blocks) by silencing it in one working copy, then confirm the best removal."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info
from slmdesk.optimize.child.convert import prune_and_fix
from slmdesk.optimize.child.scoring import build_reference, score_model

_SILENCEABLE_ARCHS = frozenset(
    {"llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "granite", "internlm2"}
)
_OUTPUT_TENSOR = re.compile(r"^blk\.(\d+)\.(attn_output|ffn_down)(_exps|_shexp)?\.(weight|bias)$")


class SilencedBlocks:
    """Candidate models for the pruning search without writing a pruned file per candidate.

    One working copy of the reference is made; a candidate "without blocks 3 and 7" is that copy
    with the output projections of blocks 3 and 7 overwritten by zeros (restored afterwards).
    A silenced block passes the residual stream through unchanged, exactly as if it had been
    removed, and only a few MB are written per candidate instead of a whole model.
    """

    def __init__(self, path: Path, regions: dict[int, list[tuple[int, int]]]) -> None:
        self.path = path
        self.regions = regions

    @classmethod
    def create(cls, reference: str, info: GGUFInfo, workdir: Path) -> SilencedBlocks | None:
        """A working copy, or None when silencing is not known to equal removal here."""
        if info.architecture not in _SILENCEABLE_ARCHS:
            return None
        regions: dict[int, list[tuple[int, int]]] = {}
        kinds: dict[int, set[str]] = {}
        for tensor in info.tensors:
            match = _OUTPUT_TENSOR.match(tensor.name)
            if match:
                block = int(match[1])
                regions.setdefault(block, []).append(
                    (info.data_offset + tensor.offset, tensor.n_bytes)
                )
                kinds.setdefault(block, set()).add(match[2])
        if any(kinds.get(b) != {"attn_output", "ffn_down"} for b in range(info.block_count)):
            return None
        path = workdir / "silenced-candidate.gguf"
        shutil.copyfile(reference, path)
        return cls(path, regions)

    @contextlib.contextmanager
    def silenced(self, blocks: Sequence[int]) -> Any:
        """The working copy with ``blocks`` silenced, for the duration of the ``with``."""
        saved: list[tuple[int, bytes]] = []
        with open(self.path, "r+b") as handle:
            try:
                for block in blocks:
                    for offset, size in self.regions[block]:
                        handle.seek(offset)
                        saved.append((offset, handle.read(size)))
                        handle.seek(offset)
                        handle.write(bytes(size))
                handle.flush()
                yield self.path
            finally:
                for offset, data in reversed(saved):
                    handle.seek(offset)
                    handle.write(data)
                handle.flush()


def plan_in_process(job: dict[str, Any], progress: Callable[..., None]) -> dict[str, Any]:
    """The guided search, run inside the worker child (see `plan_pruning`).

    ``progress(stage, done, total, detail, blocks=..., kld_mean=...)`` is called after each
    measured set, so the parent can draw each block's importance as soon as it is known.
    """
    started = time.perf_counter()
    ref_path = str(job["reference"])
    n = int(job["n"])
    n_threads = int(job.get("n_threads") or 2)
    workdir = Path(job["workdir"])
    info = read_gguf_info(ref_path)
    n_blocks = info.block_count
    reference = build_reference(ref_path, str(job["text"]), n_threads)
    scores: dict[tuple[int, ...], float] = {}
    known = job.get("importance")
    if known:
        scores.update({(b,): float(v) for b, v in enumerate(known)})
    # singles, then at most ~2n+8 sets for the greedy steps
    pool_size = min(n_blocks, max(8, 3 * n))
    total = (0 if known else n_blocks) + (
        0 if n < 2 else (n - 1) * pool_size + 3 + n_blocks - n + 1
    )
    done = 0

    masked = SilencedBlocks.create(ref_path, info, workdir)

    def score(blocks: tuple[int, ...]) -> float:
        nonlocal done
        key = tuple(sorted(blocks))
        if key in scores:
            return scores[key]
        if masked is not None:
            with masked.silenced(key) as candidate:
                summary, _ = score_model(candidate, reference, n_threads)
        else:
            candidate = workdir / f"candidate-{'-'.join(map(str, key))}.gguf"
            try:
                prune_and_fix(ref_path, str(candidate), 1, key, True, True, n_threads)
                summary, _ = score_model(candidate, reference, n_threads)
            finally:
                with contextlib.suppress(OSError):
                    candidate.unlink()
        scores[key] = float(summary["kld_mean"])
        done += 1
        progress(
            "planning",
            done,
            max(total, done),
            "blocks " + ",".join(map(str, key)),
            blocks=key,
            kld_mean=scores[key],
        )
        return scores[key]

    importance = [score((b,)) for b in range(n_blocks)]
    ranked = sorted(range(n_blocks), key=lambda b: importance[b])
    removed: list[int] = []
    if n >= 1:
        current: tuple[int, ...] = (ranked[0],)
        if n >= 2:
            top = ranked[:4]
            for i, a in enumerate(top):
                for b in top[i + 1 :]:
                    score((a, b))
            # Runs of neighbouring blocks (as in Gromov et al.): adjacent blocks are often
            # redundant together even when neither is the cheapest to remove alone.
            for first in range(n_blocks - n + 1):
                score(tuple(range(first, first + n)))
        pool = ranked[:pool_size]
        while len(current) < n:
            options = [tuple(sorted((*current, b))) for b in pool if b not in current]
            for option in options:
                score(option)
            same_size = [k for k in scores if len(k) == len(current) + 1]
            current = min(same_size, key=lambda k: scores[k])
        removed = list(current)
    return {
        "removed": removed,
        "kld_mean": scores.get(tuple(removed)) if removed else None,
        "importance": importance,
        "candidates": [
            {"blocks": list(k), "kld_mean": v}
            for k, v in sorted(scores.items(), key=lambda kv: kv[1])
        ],
        "seconds": time.perf_counter() - started,
    }
