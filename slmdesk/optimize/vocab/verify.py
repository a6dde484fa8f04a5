"""`verify_trim`: does a trimmed model tokenize and predict as its original did?

Two checks on held-out text of the kept languages, with llama.cpp itself: the tokenization, as
token texts, must be identical, and the KL divergence between the original's next-token
distribution restricted to the kept tokens and the trimmed model's must stay within `KLD_LIMIT`
(at the same type it is rounding noise: the kept rows are the same bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError

KLD_LIMIT = 0.05
# Tokens per scored window (BOS included when the model adds one).
WINDOW = 256

StepCallback = Callable[[int, int], None]


@dataclass
class TrimCheck:
    """The gate's figures."""

    texts: int
    identical_texts: int
    tokens_compared: int
    positions_scored: int
    kld_mean: float
    kld_max: float
    top1_agreement: float
    kept_tokens: int
    original_tokens: int
    first_difference: str = ""

    @property
    def passed(self) -> bool:
        """True when the trim may ship: every text tokenized alike, KLD within the limit."""
        return (
            self.identical_texts == self.texts
            and self.positions_scored > 0
            and self.kld_mean <= KLD_LIMIT
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``passed``."""
        return {**asdict(self), "passed": self.passed}


def gate_failure(check: TrimCheck) -> str | None:
    """The sentence that refuses a trim, with its figures (``None`` when it passes)."""
    if check.passed:
        return None
    if check.identical_texts != check.texts:
        return (
            f"The trimmed vocabulary tokenizes {check.texts - check.identical_texts} of "
            f"{check.texts} held-out texts differently ({check.first_difference}), so it was "
            "not kept."
        )
    if check.positions_scored == 0:
        return "The held-out text was too short to measure the trimmed model, so it was not kept."
    return (
        f"The trimmed model's predictions differ too much (KL divergence over the kept tokens "
        f"{check.kld_mean:.4f}, limit {KLD_LIMIT}), so it was not kept."
    )


def original_ids(original: list[str], trimmed: list[str]) -> np.ndarray:
    """For each trimmed token id, the original id it came from (order is preserved)."""
    mapping = np.empty(len(trimmed), dtype=np.int64)
    j = 0
    for i, text in enumerate(original):
        if j < len(trimmed) and trimmed[j] == text:
            mapping[j] = i
            j += 1
    if j != len(trimmed):
        raise SlmdeskError("The second model's vocabulary is not a trim of the first's.")
    return mapping


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float64)
    top = rows.max(axis=1, keepdims=True)
    return rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))


def _windows(tokens: np.ndarray, add_bos: bool, bos: int) -> list[np.ndarray]:
    body = tokens[1:] if add_bos and len(tokens) and tokens[0] == bos else tokens
    step = WINDOW - 1 if add_bos else WINDOW
    out = []
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        if len(piece) < 2:
            continue
        out.append(np.concatenate([[bos], piece]).astype(np.int32) if add_bos else piece)
    return out


def _describe(a: list[str], b: list[str]) -> str:
    for k, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"token {k}: {x!r} vs {y!r}"
    return f"{len(a)} vs {len(b)} tokens"


def verify_trim(
    original: Path,
    trimmed: Path,
    texts: Iterable[str],
    n_threads: int = 2,
    step: StepCallback | None = None,
    kld_tokens: int | None = None,
) -> TrimCheck:
    """Tokenize ``texts`` with both models and score them; see `TrimCheck` and `gate_failure`.

    Loads both models in this process through llama.cpp (`slmdesk.llama.scoring`); run it off
    the GUI thread, and in a child where a crash must not end the caller. ``step(done, total)``
    follows the texts. ``kld_tokens`` bounds the tokens of each text whose predictions are
    compared (all by default); the tokenization is always compared in full.
    """
    from slmdesk.llama.scoring import ModelRunner

    texts = [t for t in texts if t]
    identical = compared = scored = agree = 0
    klds: list[np.ndarray] = []
    first_difference = ""
    with (
        ModelRunner(original, WINDOW, n_threads) as ro,
        ModelRunner(trimmed, WINDOW, n_threads) as rt,
    ):
        vocab_o, vocab_t = ro.token_texts(), rt.token_texts()
        keep = original_ids(vocab_o, vocab_t)
        for n, text in enumerate(texts):
            ids_o, ids_t = ro.tokenize(text), rt.tokenize(text)
            pieces_o = [vocab_o[i] for i in ids_o]
            pieces_t = [vocab_t[i] for i in ids_t]
            compared += len(pieces_o)
            if pieces_o != pieces_t:
                first_difference = first_difference or _describe(pieces_o, pieces_t)
            else:
                identical += 1
                limit = len(ids_o) if kld_tokens is None else kld_tokens
                for wo, wt in zip(
                    _windows(ids_o[:limit], ro.add_bos, ro.bos),
                    _windows(ids_t[:limit], rt.add_bos, rt.bos),
                    strict=True,
                ):
                    for (_, lo), (_, lt) in zip(
                        ro.chunk_logits(wo, 0), rt.chunk_logits(wt, 0), strict=True
                    ):
                        p_log = _log_softmax(lo[:, keep])
                        q_log = _log_softmax(lt)
                        kld = (np.exp(p_log) * (p_log - q_log)).sum(axis=1)
                        klds.append(np.maximum(kld, 0.0))
                        agree += int((p_log.argmax(axis=1) == q_log.argmax(axis=1)).sum())
                        scored += len(lt)
            if step is not None:
                step(n + 1, len(texts))
    all_kld = np.concatenate(klds) if klds else np.zeros(0)
    return TrimCheck(
        texts=len(texts),
        identical_texts=identical,
        tokens_compared=compared,
        positions_scored=scored,
        kld_mean=float(all_kld.mean()) if scored else 0.0,
        kld_max=float(all_kld.max()) if scored else 0.0,
        top1_agreement=agree / scored if scored else 0.0,
        kept_tokens=len(vocab_t),
        original_tokens=len(vocab_o),
        first_difference=first_difference,
    )
