"""Language sets: which characters a user's texts are made of, read from the bundled corpora.

Why characters and not tokens seen: a vocabulary that keeps every token whose text is made only
of characters in a set C tokenizes every text over C exactly as the full vocabulary does (each
merge llama.cpp's SentencePiece tokenizer considers is a piece of the text), so the guarantee
holds for text the corpus never contained. The corpora decide C; the README in
``resources/vocab`` says where each file comes from and under which licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from slmdesk.common.errors import SlmdeskError
from slmdesk.common.resources import resource_path

# SentencePiece writes a space as this character; a text with spaces needs it.
SPACE_MARK = "\u2581"
# Always part of a set: whitespace a text of any language contains.
_ALWAYS = frozenset(" \n\t\r" + SPACE_MARK)


@dataclass(frozen=True)
class LanguageSet:
    """A named set of languages, and the corpus files (in ``resources/vocab``) that define it."""

    name: str
    description: str
    corpora: tuple[str, ...]
    heldout: tuple[str, ...]


_ENGLISH_CODE = ("english.txt", "code_python.txt", "code_other.txt")
_EUROPEAN = ("french.txt", "german.txt", "spanish.txt", "italian.txt")

LANGUAGE_SETS: dict[str, LanguageSet] = {
    s.name: s
    for s in (
        LanguageSet(
            "english-code",
            "English prose and program code (Python, C, JavaScript, shell, SQL, HTML).",
            _ENGLISH_CODE,
            ("heldout_english.txt", "heldout_code.txt"),
        ),
        LanguageSet(
            "western-european",
            "English and code plus French, German, Spanish and Italian.",
            _ENGLISH_CODE + _EUROPEAN,
            ("heldout_english.txt", "heldout_code.txt", "heldout_european.txt"),
        ),
    )
}


def find_language_set(name: str) -> LanguageSet:
    """The set called ``name``, or a sentence naming the choices."""
    try:
        return LANGUAGE_SETS[name]
    except KeyError:
        choices = ", ".join(LANGUAGE_SETS)
        raise SlmdeskError(f"Unknown vocabulary {name!r}: choose one of {choices}.") from None


def _read(name: str) -> str:
    path = resource_path("vocab", name)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SlmdeskError(
            f"The bundled corpus {name} cannot be read ({exc}): reinstall."
        ) from None


@lru_cache(maxsize=8)
def charset_for(name: str) -> frozenset[str]:
    """Every character in the set's corpora, plus whitespace and SentencePiece's space mark."""
    chars: set[str] = set(_ALWAYS)
    for corpus in find_language_set(name).corpora:
        chars.update(_read(corpus))
    return frozenset(chars)


def heldout_texts(name: str) -> list[str]:
    """The held-out texts (not part of any corpus) that a trim to this set is judged on."""
    return [_read(f) for f in find_language_set(name).heldout]
