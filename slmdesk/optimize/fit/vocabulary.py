"""The vocabulary axis: trimmed vocabularies from `slmdesk.optimize.vocab`, when it is present.

One adapter so the search does not depend on that package's details: without it (or when it
fails to import) the axis is just ``[None]``, the whole vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _module() -> Any | None:
    try:
        from slmdesk.optimize import vocab  # type: ignore[attr-defined]
    except ImportError:
        return None
    if not hasattr(vocab, "trim_vocabulary") or not hasattr(vocab, "LANGUAGE_SETS"):
        return None
    return vocab


def available_sets() -> list[str]:
    """The language sets a vocabulary can be trimmed to (empty without the vocab package)."""
    vocab = _module()
    return [] if vocab is None else [str(name) for name in vocab.LANGUAGE_SETS]


def vocabulary_axis(wanted: list[str] | None = None) -> list[str | None]:
    """``[None, *sets]``: the whole vocabulary first, then the sets asked for that exist."""
    sets = available_sets()
    chosen = sets if wanted is None else [s for s in wanted if s in sets]
    return [None, *chosen]


def trim(source: Path, dest: Path, language_set: str) -> Path:
    """Write ``source`` with its vocabulary trimmed to ``language_set`` at ``dest``."""
    vocab = _module()
    if vocab is None:
        raise RuntimeError("vocabulary trimming is not available")
    result = vocab.trim_vocabulary(source, dest, language_set)
    return Path(getattr(result, "dest", dest))


def token_list(path: Path) -> list[str]:
    """The file's vocabulary, in id order."""
    from slmdesk.models.gguf_info import read_token_texts

    return [word.decode("utf-8", errors="replace") for word in read_token_texts(path)]


def kept_ids(original: Path, trimmed: Path) -> list[int]:
    """For each token of ``trimmed`` (by new id), its id in ``original``, matched by text."""
    first: dict[str, int] = {}
    for i, text in enumerate(token_list(original)):
        first.setdefault(text, i)
    out = []
    for text in token_list(trimmed):
        if text not in first:
            raise ValueError(f"token {text!r} of the trimmed vocabulary is not in the original")
        out.append(first[text])
    return out
