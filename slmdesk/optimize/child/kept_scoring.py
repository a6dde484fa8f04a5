"""A reference for a model with a trimmed vocabulary: KL divergence over the kept tokens only.

The held-out text is tokenized by the trimmed model (so every scored token exists in both), the
reference reads the same tokens under their original ids, and its distributions are restricted
to the kept ids and renormalized. The trimmed model is then scored against that reference with
the ordinary `score_model`, since ids and vocabulary sizes now agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slmdesk.llama.scoring import ModelRunner
from slmdesk.optimize.child.scoring import Reference, make_chunks
from slmdesk.optimize.evaluate import DEFAULT_MAX_CTX, ReferenceRow, reference_rows


def build_kept_reference(
    reference: str | Path,
    trimmed: str | Path,
    kept: Sequence[int],
    text: str,
    n_threads: int = 2,
    max_ctx: int = DEFAULT_MAX_CTX,
) -> Reference:
    """The reference's distributions over the ``kept`` ids (new id i = original id kept[i])."""
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
