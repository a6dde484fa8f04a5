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

import ctypes
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.core.errors import SlmdeskError

LOGQ_CUTOFF = -16.0
BATCH = 128
DEFAULT_MAX_CTX = 1024
MIN_TOKENS = 16
SPEED_TOKENS = 32


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


# -- llama.cpp in this process (the child) ---------------------------------------------------


def _quiet_llama() -> Any:
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)
    return llama_cpp


class ModelRunner:
    """One model loaded in llama.cpp for scoring: tokenize, decode in batches, time decoding.

    Not thread-safe; lives in the worker child. Call `close` (or use ``with``).
    """

    def __init__(self, path: str | Path, n_ctx: int, n_threads: int = 2) -> None:
        self.llama = _quiet_llama()
        lib = self.llama
        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self.model = lib.llama_model_load_from_file(str(path).encode("utf-8"), mparams)
        if not self.model:
            raise SlmdeskError(f"llama.cpp could not load {Path(path).name}.")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = max(n_ctx, 64)
        cparams.n_batch = BATCH
        cparams.n_ubatch = BATCH
        cparams.n_seq_max = 1
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        self.ctx = lib.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lib.llama_model_free(self.model)
            raise SlmdeskError(f"llama.cpp could not create a context for {Path(path).name}.")
        self.batch = lib.llama_batch_init(BATCH, 0, 1)

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the context, batch and model."""
        lib = self.llama
        if getattr(self, "ctx", None):
            lib.llama_batch_free(self.batch)
            lib.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            lib.llama_model_free(self.model)
            self.model = None

    def tokenize(self, text: str) -> np.ndarray:
        """Token ids of ``text`` with BOS as the model adds it."""
        lib = self.llama
        raw = text.encode("utf-8")
        size = len(raw) + 16
        buf = (lib.llama_token * size)()
        n = lib.llama_tokenize(self.vocab, raw, len(raw), buf, size, True, False)
        if n < 0:
            size = -n
            buf = (lib.llama_token * size)()
            n = lib.llama_tokenize(self.vocab, raw, len(raw), buf, size, True, False)
        return np.array(buf[:n], dtype=np.int32)

    @property
    def add_bos(self) -> bool:
        """Whether the vocabulary puts BOS first."""
        return bool(self.llama.llama_vocab_get_add_bos(self.vocab))

    @property
    def bos(self) -> int:
        """The BOS token id."""
        return int(self.llama.llama_vocab_bos(self.vocab))

    def _decode(self, tokens: np.ndarray, start_pos: int, want: np.ndarray) -> int:
        lib = self.llama
        b = self.batch
        n = len(tokens)
        b.n_tokens = n
        for k in range(n):
            b.token[k] = int(tokens[k])
            b.pos[k] = start_pos + k
            b.n_seq_id[k] = 1
            b.seq_id[k][0] = 0
            b.logits[k] = 1 if want[k] else 0
        rc = lib.llama_decode(self.ctx, b)
        if rc != 0:
            raise SlmdeskError(f"llama.cpp failed to decode (code {rc}).")
        return int(want.sum())

    def chunk_logits(self, chunk: np.ndarray, first: int) -> Iterator[tuple[int, np.ndarray]]:
        """Decode one chunk; yield ``(position, logits rows)`` for positions ``>= first``.

        Rows cover positions ``first .. len(chunk)-2`` (those predicting a next token), at most
        `BATCH` rows at a time; each array is a copy the caller may keep or drop.
        """
        lib = self.llama
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        n = len(chunk)
        for start in range(0, n - 1, BATCH):
            piece = chunk[start : min(start + BATCH, n - 1)]
            positions = np.arange(start, start + len(piece))
            want = positions >= first
            n_out = self._decode(piece, start, want)
            if n_out == 0:
                continue
            ptr = lib.llama_get_logits(self.ctx)
            flat = np.ctypeslib.as_array(
                ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(n_out * self.n_vocab,)
            )
            rows = flat.reshape(n_out, self.n_vocab).copy()
            yield int(positions[want][0]), rows

    def decode_speed(self, prompt: np.ndarray, n_tokens: int = SPEED_TOKENS) -> float:
        """Greedy generation speed in tokens/second after ``prompt`` (one token per decode)."""
        lib = self.llama
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        prompt = prompt[: min(len(prompt), 64)]
        want = np.zeros(len(prompt), dtype=bool)
        want[-1] = True
        self._decode(prompt, 0, want)
        pos = len(prompt)
        ptr = lib.llama_get_logits_ith(self.ctx, -1)
        token = int(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())
        started = time.perf_counter()
        for _ in range(n_tokens):
            self._decode(np.array([token], dtype=np.int32), pos, np.array([True]))
            pos += 1
            ptr = lib.llama_get_logits_ith(self.ctx, -1)
            token = int(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).argmax())
        elapsed = time.perf_counter() - started
        return n_tokens / elapsed if elapsed > 0 else float("inf")


def make_chunks(
    tokens: np.ndarray, add_bos: bool, bos: int, max_ctx: int = DEFAULT_MAX_CTX
) -> list[np.ndarray]:
    """Cut tokens into llama-perplexity chunks (BOS first when the model adds one)."""
    if len(tokens) < MIN_TOKENS:
        raise SlmdeskError(
            f"The evaluation text is too short ({len(tokens)} tokens); give at least a paragraph."
        )
    n_ctx = min(max_ctx, len(tokens))
    chunks = []
    for c in range(len(tokens) // n_ctx):
        chunk = tokens[c * n_ctx : (c + 1) * n_ctx].copy()
        if add_bos:
            chunk[0] = bos
        chunks.append(chunk)
    return chunks


@dataclass
class Reference:
    """A reference model's scored positions, kept compact for many comparisons."""

    chunks: list[np.ndarray]
    rows: list[list[ReferenceRow]]  # per chunk, per scored position
    n_vocab: int
    tokens_per_second: float | None = None

    @property
    def n_ctx(self) -> int:
        """Tokens per chunk."""
        return len(self.chunks[0])


def build_reference(
    path: str | Path,
    text: str,
    n_threads: int = 2,
    max_ctx: int = DEFAULT_MAX_CTX,
    measure_speed: bool = False,
) -> Reference:
    """Score ``text`` with the reference model and keep what comparisons need."""
    with ModelRunner(path, max_ctx, n_threads) as runner:
        tokens = runner.tokenize(text)
        chunks = make_chunks(tokens, runner.add_bos, runner.bos, max_ctx)
        first = len(chunks[0]) // 2
        rows: list[list[ReferenceRow]] = []
        for chunk in chunks:
            chunk_rows: list[ReferenceRow] = []
            for pos, logits in runner.chunk_logits(chunk, first):
                targets = chunk[pos + 1 : pos + 1 + len(logits)]
                chunk_rows.extend(reference_rows(logits, targets))
            rows.append(chunk_rows)
        speed = runner.decode_speed(tokens) if measure_speed else None
        return Reference(chunks, rows, runner.n_vocab, speed)


def score_model(
    path: str | Path,
    reference: Reference,
    n_threads: int = 2,
    measure_speed: bool = False,
) -> tuple[dict[str, float | int], float | None]:
    """Compare a model with a `Reference`; returns (summary figures, tokens/second or None)."""
    figures = Figures()
    with ModelRunner(path, reference.n_ctx, n_threads) as runner:
        if runner.n_vocab != reference.n_vocab:
            raise SlmdeskError(
                f"The model and the reference have different vocabularies "
                f"({runner.n_vocab:,} vs {reference.n_vocab:,} tokens): they cannot be compared."
            )
        first = reference.n_ctx // 2
        for chunk, ref_rows in zip(reference.chunks, reference.rows, strict=True):
            for pos, logits in runner.chunk_logits(chunk, first):
                targets = chunk[pos + 1 : pos + 1 + len(logits)]
                refs = ref_rows[pos - first : pos - first + len(logits)]
                kld, same, nll = compare_rows(logits, targets, refs)
                figures.add(kld, same, nll, np.array([r.nll for r in refs]))
        speed = runner.decode_speed(reference.chunks[0]) if measure_speed else None
    return figures.summary(), speed


def text_sha256(text: str) -> str:
    """Hash of an evaluation text, for provenance."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def evaluate_in_process(
    model: str | Path,
    reference: str | Path,
    text: str,
    n_threads: int = 2,
    max_ctx: int = DEFAULT_MAX_CTX,
    measure_speed: bool = True,
) -> EvalReport:
    """Evaluate ``model`` against ``reference`` here (what the worker child runs)."""
    started = time.perf_counter()
    ref = build_reference(reference, text, n_threads, max_ctx, measure_speed)
    summary, speed = score_model(model, ref, n_threads, measure_speed)
    return EvalReport(
        kld_mean=float(summary["kld_mean"]),
        kld_p99=float(summary["kld_p99"]),
        kld_median=float(summary["kld_median"]),
        top1_agreement=float(summary["top1_agreement"]),
        ppl=float(summary["ppl"]),
        ppl_reference=float(summary["ppl_reference"]),
        tokens_per_second=speed,
        tokens_per_second_reference=ref.tokens_per_second,
        n_tokens_scored=int(summary["n_tokens_scored"]),
        n_ctx=ref.n_ctx,
        n_chunks=len(ref.chunks),
        text_sha256=text_sha256(text),
        model=str(model),
        reference=str(reference),
        seconds=time.perf_counter() - started,
    )


def default_text() -> str:
    """The shipped held-out evaluation text (not the calibration text the planner uses)."""
    from slmdesk.core.resources import resource_path

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
    `slmdesk.core.worker_process.Progress` on the calling thread; ``cancel`` is polled.

    Raises:
        SlmdeskError: unreadable models, different vocabularies, a too short text; and
            `OptimizeCancelled` / `WorkerCrashed` from the child.
    """
    from slmdesk.core.gguf_info import read_gguf_info
    from slmdesk.core.worker_process import run_worker

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
