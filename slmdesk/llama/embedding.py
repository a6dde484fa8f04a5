"""Embedding models: vectors for texts, from models made for it (pooled, one per text).

A chat model's hidden states are not useful sentence vectors, so only files that declare a
pooling method (``<arch>.pooling_type``) or have an encoder architecture (BERT and its kin)
are treated as embedding models. `Embedder` holds one such model with llama.cpp's embedding
mode on; like `ChatEngine` it is used from one thread.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from slmdesk.common.errors import InvalidModelError
from slmdesk.llama import probe
from slmdesk.llama.engine import EngineError
from slmdesk.models.gguf_info import GGUFInfo, read_gguf_info
from slmdesk.models.hardware import machine_info

log = logging.getLogger(__name__)

ENCODER_ARCHITECTURES = frozenset(
    {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3", "modern-bert"}
)
# llama.cpp's pooling types that give one vector per text: mean, CLS, last token.
POOLED = (1, 2, 3)
# Longest text (in tokens) one embedding call evaluates; longer texts are refused.
MAX_EMBED_TOKENS = 2048


def pooling_type(info: GGUFInfo) -> int | None:
    """The pooling method the file declares, or None."""
    value = info.metadata.get(f"{info.architecture}.pooling_type")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def can_embed(info: GGUFInfo) -> bool:
    """Whether the file is an embedding model."""
    return info.architecture in ENCODER_ARCHITECTURES or pooling_type(info) in POOLED


def is_encoder_only(info: GGUFInfo) -> bool:
    """Whether the file can only embed (it cannot generate text)."""
    return info.architecture in ENCODER_ARCHITECTURES


class Embedder:
    """One embedding model in memory. Use from one thread."""

    def __init__(self) -> None:
        self._llm: Any = None
        self.path: Path | None = None
        self._lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        """Whether a model is in memory."""
        return self._llm is not None

    def load(self, path: str | os.PathLike[str], cancel: threading.Event | None = None) -> GGUFInfo:
        """Load an embedding model, replacing the one in memory.

        Raises:
            InvalidModelError: not a usable GGUF file, or not an embedding model.
            EngineError: llama.cpp could not load it.
        """
        with self._lock:
            info = read_gguf_info(Path(path))
            if not can_embed(info):
                raise InvalidModelError(f"{info.path.name} is not an embedding model.")
            probe.ensure_loadable(info.path, cancel=cancel)
            self._unload()
            import llama_cpp

            trained = info.context_length or MAX_EMBED_TOKENS
            n_ctx = max(64, min(trained, MAX_EMBED_TOKENS))
            threads = machine_info().physical_cores
            pending = probe.loading_started(info.path)
            try:
                self._llm = llama_cpp.Llama(
                    model_path=str(info.path),
                    embedding=True,
                    n_ctx=n_ctx,
                    n_batch=n_ctx,
                    n_ubatch=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    verbose=False,
                )
            except Exception as exc:
                raise EngineError(f"llama.cpp could not load {info.path.name}: {exc}") from None
            finally:
                probe.loading_done(pending, info.path)
            self.path = info.path
            log.info("loaded embedding model %s", info.path.name)
            return info

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit-length vectors for ``texts`` and how many tokens they took.

        Raises:
            EngineError: no model, or a text longer than the model takes at once.
        """
        with self._lock:
            if self._llm is None:
                raise EngineError("No embedding model is loaded.")
            limit = int(self._llm.n_batch)
            vectors: list[list[float]] = []
            total = 0
            for text in texts:
                n = len(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
                if n > limit:
                    raise EngineError(
                        f"A text of {n:,} tokens is longer than this model embeds at once "
                        f"({limit:,})."
                    )
                vector, count = self._llm.embed(
                    text, normalize=True, truncate=False, return_count=True
                )
                vectors.append([float(x) for x in vector])
                total += int(count)
            return vectors, total

    def unload(self) -> None:
        """Free the model (no-op when none is loaded)."""
        with self._lock:
            self._unload()

    def _unload(self) -> None:
        llm, self._llm, self.path = self._llm, None, None
        if llm is not None:
            llm.close()
