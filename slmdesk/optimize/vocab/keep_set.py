"""Which token ids a trimmed vocabulary keeps.

llama.cpp's SentencePiece tokenizer (``llm_tokenizer_spm``) first cuts out control, unknown and
user-defined tokens matched as literal text, then splits the rest into UTF-8 characters (spaces
written as ``▁``), merges adjacent pieces by the best score among those whose concatenation is a
vocabulary token, and spells what no token covers with byte tokens ``<0xNN>``. Every string it
looks up is a piece of the text, so for a text made only of characters in C it only ever meets
tokens over C: keeping all of them (and every byte, control and unknown token) leaves the
tokenization of such texts unchanged, including every merge path to the tokens a corpus shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Token types as llama.cpp defines them (llama_token_type).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
_ALWAYS_KEPT = {UNKNOWN, CONTROL, BYTE}


def kept_ids(
    tokens: Sequence[str],
    types: Sequence[int],
    charset: frozenset[str],
    required: Iterable[int] = (),
) -> list[int]:
    """Ids to keep, ascending: byte, control and unknown tokens, every token whose text is made
    only of characters in ``charset``, and the ``required`` ids (special tokens named by id)."""
    keep = {i for i in required if 0 <= i < len(tokens)}
    for i, (text, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind in _ALWAYS_KEPT or (text and charset.issuperset(text)):
            keep.add(i)
    return sorted(keep)
