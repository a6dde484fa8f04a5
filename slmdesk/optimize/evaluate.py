"""Measure what compression cost: a model against its reference on a text.

Definitions follow llama.cpp's ``llama-perplexity --kl-divergence`` (tools/perplexity, function
``kl_divergence``):

- The text is tokenized with the model's special tokens (BOS), cut into chunks of ``n_ctx``
  tokens (the remainder is dropped); the first token of each chunk is replaced by BOS when the
  vocabulary adds one.
- Only the second half of each chunk is scored: positions ``n_ctx/2 ... n_ctx-2``, each predicting
  the next token, so every scored token has at least half a chunk of context.
- Per token, with log-softmax distributions ``log p`` (model) and ``log q`` (reference):
  KLD = sum over the vocabulary of ``q * (log q - log p)``, skipping terms with ``log q <= -16``
  (llama.cpp stores reference log-probs quantized and drops those terms too).
- top-1 agreement: the argmax of both distributions is the same token.
- perplexity: ``exp(mean(-log p(next token)))`` over the scored tokens (same for the reference).
- the 99th percentile of KLD uses llama.cpp's linear interpolation between sorted values.

Memory: logits are never held for a whole text. The reference is reduced, per scored token, to
the entries with ``log q > -16`` (all the KLD needs), and the model is decoded in batches of
`BATCH` tokens whose logits rows are compared and dropped (262,144-token vocabularies make one row
1 MB of float32).

Heavy work runs in a child process (`evaluate`); `evaluate_in_process` is what the child runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError

LOGQ_CUTOFF = -16.0
DEFAULT_MAX_CTX = 1024
MIN_TOKENS = 16


@dataclass
class EvalReport:
    """Quality and speed of a model against its reference (the ``eval`` JSON contract)."""

    kld_mean: float
    kld_p99: float
    kld_median: float
    top1_agreement: float
    ppl: float
    ppl_reference: float
    tokens_per_second: float | None
    tokens_per_second_reference: float | None
    n_tokens_scored: int
    n_ctx: int
    n_chunks: int
    text_sha256: str
    model: str = ""
    reference: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# -- numerics (pure numpy, used by the child and by tests) -----------------------------------


def log_softmax(rows: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float32 (max-subtracted, sums in float64 as llama.cpp does)."""
    rows = np.asarray(rows, dtype=np.float32)
    maxes = rows.max(axis=1, keepdims=True)
    shifted = rows - maxes
    sums = np.exp(shifted, dtype=np.float32).sum(axis=1, dtype=np.float64, keepdims=True)
    return (shifted - np.log(sums).astype(np.float32)).astype(np.float32)


@dataclass
class ReferenceRow:
    """What the KLD needs of one reference distribution."""

    index: np.ndarray  # token ids with log q > LOGQ_CUTOFF
    logq: np.ndarray  # their log-probabilities
    argmax: int
    nll: float  # -log q(next token)


def reference_rows(logits: np.ndarray, targets: np.ndarray) -> list[ReferenceRow]:
    """Reduce reference logits rows to `ReferenceRow` s (one per scored position)."""
    lq = log_softmax(logits)
    out = []
    for r in range(lq.shape[0]):
        row = lq[r]
        keep = np.nonzero(row > LOGQ_CUTOFF)[0].astype(np.int32)
        out.append(
            ReferenceRow(keep, row[keep].copy(), int(row.argmax()), float(-row[int(targets[r])]))
        )
    return out


def compare_rows(
    logits: np.ndarray, targets: np.ndarray, refs: list[ReferenceRow]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-position KLD, same-top-1 flags and model NLL for a batch of model logits rows."""
    lp = log_softmax(logits)
    kld = np.empty(len(refs), dtype=np.float64)
    same = np.empty(len(refs), dtype=bool)
    nll = np.empty(len(refs), dtype=np.float64)
    for r, ref in enumerate(refs):
        row = lp[r]
        q = np.exp(ref.logq.astype(np.float64))
        kld[r] = float(np.sum(q * (ref.logq.astype(np.float64) - row[ref.index])))
        same[r] = int(row.argmax()) == ref.argmax
        nll[r] = float(-row[int(targets[r])])
    return kld, same, nll


def percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """llama.cpp's percentile: linear interpolation between sorted values."""
    values = np.asarray(sorted_values, dtype=np.float64)
    if values.size == 0:
        return float("nan")
    if fraction <= 0:
        return float(values[0])
    if fraction >= 1:
        return float(values[-1])
    p = fraction * (values.size - 1)
    ip = int(p)
    p -= ip
    return float((1 - p) * values[ip] + p * values[min(ip + 1, values.size - 1)])


@dataclass
class Figures:
    """Accumulated per-token measurements."""

    kld: list[np.ndarray] = field(default_factory=list)
    same: list[np.ndarray] = field(default_factory=list)
    nll: list[np.ndarray] = field(default_factory=list)
    nll_ref: list[np.ndarray] = field(default_factory=list)

    def add(self, kld: np.ndarray, same: np.ndarray, nll: np.ndarray, nll_ref: np.ndarray) -> None:
        """Append one batch."""
        self.kld.append(kld)
        self.same.append(same)
        self.nll.append(nll)
        self.nll_ref.append(nll_ref)

    def summary(self) -> dict[str, float | int]:
        """Mean / p99 / median KLD, top-1 agreement, both perplexities, count."""
        kld = np.sort(np.concatenate(self.kld)) if self.kld else np.zeros(0)
        n = int(kld.size)
        if n == 0:
            raise SlmdeskError("No tokens were scored: the text is too short.")
        median = float(kld[n // 2]) if n % 2 else float(0.5 * (kld[n // 2] + kld[n // 2 - 1]))
        return {
            "kld_mean": float(kld.mean()),
            "kld_p99": percentile(kld, 0.99),
            "kld_median": median,
            "top1_agreement": float(np.concatenate(self.same).mean()),
            "ppl": float(np.exp(np.concatenate(self.nll).mean())),
            "ppl_reference": float(np.exp(np.concatenate(self.nll_ref).mean())),
            "n_tokens_scored": n,
        }


def text_sha256(text: str) -> str:
    """Hash of an evaluation text, for provenance."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_text() -> str:
    """The shipped held-out evaluation text (not the calibration text the planner uses)."""
    from slmdesk.common.resources import resource_path

    return resource_path("heldout.txt").read_text(encoding="utf-8")


def evaluate(
    model: str | Path,
    reference: str | Path,
    text: str | None = None,
    n_threads: int = 2,
    progress: Callable[[Any], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> EvalReport:
    """Evaluate ``model`` against ``reference`` in a worker child process.

    Blocks the calling thread (run it off the GUI thread); ``progress`` gets
    `slmdesk.optimize.worker_process.Progress` on the calling thread; ``cancel`` is polled.

    Raises:
        SlmdeskError: unreadable models, different vocabularies, a too short text; and
            `OptimizeCancelled` / `WorkerCrashed` from the child.
    """
    from slmdesk.models.gguf_info import read_gguf_info
    from slmdesk.optimize.worker_process import run_worker

    for path in (model, reference):
        read_gguf_info(path)
    job = {
        "kind": "evaluate",
        "model": str(model),
        "reference": str(reference),
        "text": text if text is not None else default_text(),
        "n_threads": n_threads,
    }
    result = run_worker(job, progress, cancel, stage="evaluating")
    return EvalReport(**result)
