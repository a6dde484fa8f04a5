"""`trim_vocabulary`: a copy of a model that keeps only the tokens a language set needs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmdesk.common.errors import SlmdeskError
from slmdesk.optimize.vocab.charsets import charset_for, find_language_set
from slmdesk.optimize.vocab.keep_set import kept_ids
from slmdesk.optimize.vocab.rewrite import (
    SCORES,
    TOKENS,
    TYPES,
    VOCAB_TENSORS,
    special_ids,
    write_trimmed,
)
from slmdesk.optimize.worker_process import Progress

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class TrimResult:
    """What a trim kept and wrote."""

    dest: Path
    language_set: str
    kept_tokens: int
    original_tokens: int
    size_bytes: int
    source_size_bytes: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["dest"] = str(self.dest)
        return data


def _open(source: Path) -> Any:
    """The file as a `gguf.GGUFReader`, refused with a sentence when it is no usable model."""
    import gguf

    from slmdesk.models.gguf_info import read_gguf_info

    read_gguf_info(source)  # hostile-input checks first: counts, lengths, damaged tokens
    try:
        return gguf.GGUFReader(str(source), "r")
    except (ValueError, OSError, KeyError, IndexError) as exc:
        raise SlmdeskError(f"{source.name} cannot be read as a GGUF model: {exc}.") from None


def _vocabulary(reader: Any, name: str) -> tuple[list[str], list[int]]:
    """Token texts and types, after checking that the file can be trimmed at all."""
    model_field = reader.fields.get("tokenizer.ggml.model")
    model = str(model_field.contents()) if model_field is not None else "none"
    if model != "llama":
        raise SlmdeskError(
            f"Vocabulary trimming needs a SentencePiece ('llama') tokenizer; {name} has {model!r}."
        )
    if TOKENS not in reader.fields or TYPES not in reader.fields:
        raise SlmdeskError(f"{name} has no token list or no token types to trim.")
    tokens = reader.fields[TOKENS].contents()
    types = [int(t) for t in reader.fields[TYPES].contents()]
    lengths = {TOKENS: len(tokens), TYPES: len(types)}
    if SCORES in reader.fields:
        lengths[SCORES] = len(reader.fields[SCORES].data)
    if len(set(lengths.values())) != 1:
        found = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in lengths.items())
        raise SlmdeskError(f"{name} has token arrays of different lengths ({found}).")
    n_vocab = len(tokens)
    seen = False
    for tensor in reader.tensors:
        if tensor.name in VOCAB_TENSORS:
            seen = seen or tensor.name == "token_embd.weight"
            if tensor.data.shape[0] != n_vocab:
                raise SlmdeskError(
                    f"{name}: {tensor.name} has {tensor.data.shape[0]} rows for {n_vocab} tokens."
                )
    if not seen:
        raise SlmdeskError(f"{name} has no token_embd.weight tensor to trim.")
    return tokens, types


def trim_vocabulary(
    source: Path,
    dest: Path,
    language_set: str,
    progress: ProgressCallback | None = None,
) -> TrimResult:
    """Write ``dest``: ``source`` keeping only the tokens texts of the language set can produce.

    Kept: every token made only of characters of the set's corpora (so every token the corpora
    tokenize to and every merge on the way), all byte, control and unknown tokens, and every id a
    key names. Tensors other than the embedding and output matrices are copied byte for byte.

    Raises:
        SlmdeskError: unknown set, unreadable file, a tokenizer that is not SentencePiece-style,
            token arrays that disagree, a disk error.
    """
    started = time.perf_counter()
    source, dest = Path(source), Path(dest)
    find_language_set(language_set)  # a bad name is refused before the file is read
    if source.resolve() == dest.resolve():
        raise SlmdeskError("The trimmed model needs a name other than its source's.")
    reader = _open(source)
    tokens, types = _vocabulary(reader, source.name)
    required = special_ids(reader)
    if any(not 0 <= i < len(tokens) for i in required):
        raise SlmdeskError(f"{source.name} names a special token id beyond its vocabulary.")
    kept = kept_ids(tokens, types, charset_for(language_set), required)

    def tensor_progress(done: int, total: int, detail: str) -> None:
        if progress is not None:
            progress(Progress("trimming", done, total, detail))

    write_trimmed(reader, dest, np.asarray(kept).tolist(), tensor_progress)
    return TrimResult(
        dest=dest,
        language_set=language_set,
        kept_tokens=len(kept),
        original_tokens=len(tokens),
        size_bytes=dest.stat().st_size,
        source_size_bytes=source.stat().st_size,
        seconds=time.perf_counter() - started,
    )
