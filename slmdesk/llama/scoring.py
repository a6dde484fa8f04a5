"""A model loaded through llama.cpp's C API for scoring: tokenize, decode in batches and read
logits rows, measure greedy decode speed. Used by evaluation and pruning plans in the optimizer
child process."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError

# Tokens decoded per llama_decode call (and logits rows held at once).
BATCH = 128
# Tokens generated to measure decode speed.
SPEED_TOKENS = 32


def _quiet_llama() -> Any:
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)
    return llama_cpp


class ModelRunner:
    """One model loaded in llama.cpp for scoring: tokenize, decode in batches, time decoding.

    Not thread-safe; lives in the worker child. Call `close` (or use ``with``).
    """

    def __init__(
        self, path: str | Path, n_ctx: int, n_threads: int = 2, eval_callback: Any = None
    ) -> None:
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
        if eval_callback is not None:
            # llama.cpp hands every graph node to this callback (see llama/imatrix.py).
            cparams.cb_eval = eval_callback
            cparams.cb_eval_user_data = None
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

    def token_texts(self) -> list[str]:
        """Every token's text as the vocabulary stores it (SentencePiece's ``▁`` for spaces)."""
        lib = self.llama
        raw = [lib.llama_vocab_get_text(self.vocab, i) for i in range(self.n_vocab)]
        return [t.decode("utf-8", errors="replace") if t else "" for t in raw]

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

    def read(self, chunk: np.ndarray) -> None:
        """Decode ``chunk`` from an empty context with outputs for every token, keeping nothing.

        Every output is asked for so that the output layer runs on every token too (the
        evaluation callback sees its input).
        """
        lib = self.llama
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        for start in range(0, len(chunk), BATCH):
            piece = chunk[start : start + BATCH]
            self._decode(piece, start, np.ones(len(piece), dtype=bool))

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
