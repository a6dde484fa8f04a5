"""Scoring in the optimizer child: a reference model's next-token distributions on a text, and a
candidate's KL divergence, top-1 agreement and perplexity against them (`slmdesk.optimize.evaluate`
holds the numerics and the parent's side)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError
from slmdesk.llama.scoring import ModelRunner
from slmdesk.optimize.evaluate import (
    DEFAULT_MAX_CTX,
    MIN_TOKENS,
    EvalReport,
    Figures,
    ReferenceRow,
    compare_rows,
    reference_rows,
    text_sha256,
)


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


def evaluate_in_process(
    model: str | Path,
    reference: str | Path,
    text: str,
    n_threads: int = 2,
    max_ctx: int = DEFAULT_MAX_CTX,
    measure_speed: bool = True,
) -> EvalReport:
    """Evaluate ``model`` against ``reference`` here (what the worker child runs).

    A model whose vocabulary was trimmed is compared over the tokens it kept (the reference's
    distributions restricted to them, `build_kept_reference`); ``extra["kept_tokens"]`` then says how
    many.
    """
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    kept = _kept_ids_if_trimmed(Path(model), Path(reference))
    if kept is None:
        ref = build_reference(reference, text, n_threads, max_ctx, measure_speed)
    else:
        ref = build_kept_reference(reference, model, kept, text, n_threads, max_ctx)
        extra["kept_tokens"] = len(kept)
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
        extra=extra,
    )


def build_kept_reference(
    reference: str | Path,
    trimmed: str | Path,
    kept: Sequence[int],
    text: str,
    n_threads: int = 2,
    max_ctx: int = DEFAULT_MAX_CTX,
) -> Reference:
    """The reference's distributions over the ``kept`` ids (new id i = original id kept[i]), for
    a model with a trimmed vocabulary: KL divergence over the kept tokens only.

    The text is tokenized by the trimmed model (so every scored token exists in both), the
    reference reads the same tokens under their original ids, and its distributions are
    restricted to the kept ids and renormalized; `score_model` then compares as usual, since ids
    and vocabulary sizes agree.
    """
    to_original = np.asarray(kept, dtype=np.int32)
    with ModelRunner(trimmed, 64, n_threads) as small:
        tokens = small.tokenize(text)
        add_bos, bos = small.add_bos, small.bos
    chunks = make_chunks(tokens, add_bos, bos, max_ctx)
    first = len(chunks[0]) // 2
    rows: list[list[ReferenceRow]] = []
    with ModelRunner(reference, len(chunks[0]), n_threads) as runner:
        for chunk in chunks:
            chunk_rows: list[ReferenceRow] = []
            for pos, logits in runner.chunk_logits(to_original[chunk], first):
                targets = chunk[pos + 1 : pos + 1 + len(logits)]
                chunk_rows.extend(reference_rows(logits[:, to_original], targets))
            rows.append(chunk_rows)
    return Reference(chunks, rows, len(to_original))


def _kept_ids_if_trimmed(model: Path, reference: Path) -> list[int] | None:
    """For a model with fewer tokens than its reference, each token's id in the reference."""
    from slmdesk.models.gguf_info import read_gguf_info

    if read_gguf_info(model).vocab_size >= read_gguf_info(reference).vocab_size:
        return None
    from slmdesk.optimize.fit.vocabulary import kept_ids

    try:
        return kept_ids(reference, model)
    except ValueError:
        return None  # not a trim of the reference: score_model names the mismatch
