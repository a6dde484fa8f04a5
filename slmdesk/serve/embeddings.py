"""``POST /v1/embeddings``: vectors from embedding models, a clear 400 from the others.

The official client asks for ``base64`` by default: little-endian float32 bytes, base64-encoded.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from slmdesk.llama.engine import EngineError
from slmdesk.serve.errors import bad_request
from slmdesk.serve.inference import Slot, Work
from slmdesk.serve.schemas import EmbeddingRequest

MAX_INPUTS = 256


def _texts(body: EmbeddingRequest) -> list[str]:
    values = [body.input] if isinstance(body.input, str) else list(body.input)
    if not values:
        raise bad_request("The input is empty.", param="input")
    if len(values) > MAX_INPUTS:
        raise bad_request(f"At most {MAX_INPUTS} inputs per request.", param="input")
    if not all(isinstance(v, str) for v in values):
        raise bad_request("Send text, not token ids.", param="input")
    if not all(values):
        raise bad_request("An input text is empty.", param="input")
    return [str(v) for v in values]


def _encoded(vector: list[float], encoding: str | None) -> Any:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def embedding_work(body: EmbeddingRequest) -> Work:
    """The work that answers ``body`` on the inference thread (checked here, first)."""
    texts = _texts(body)

    def work(slot: Slot) -> dict[str, Any]:
        assert slot.embedder is not None
        try:
            vectors, tokens = slot.embedder.embed(texts)
        except EngineError as exc:
            raise bad_request(str(exc), param="input") from None
        return {
            "object": "list",
            "model": slot.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": _encoded(v, body.encoding_format)}
                for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return work
