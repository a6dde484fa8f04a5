"""The chat search box's text, made safe: terms, FTS5 strings, LIKE patterns and snippets.

Why a module of its own: search text is hostile input. FTS5 has a query language of its own
(quotes, ``*``, ``NEAR``, ``-``, ``AND``/``OR``/``NOT``, parentheses, ``column:`` filters) and a
stray character in it is a syntax error. So the user's text is never handed to FTS5 as a query:
it is split into terms here and each term is passed as one quoted FTS5 string, in which every
character is literal. Parsing is bounded (`MAX_QUERY_CHARS`, `MAX_TERMS`) so a pasted essay
cannot turn one keystroke into a slow query.

Rules: terms are separated by white space; text between double quotes is one term (a phrase),
and an unbalanced quote runs to the end. Quote characters themselves are never searched for.
A conversation matches when each term occurs somewhere in it (its title or any message),
ignoring case; a term is a substring, so "garden" finds "Gardening".
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "TRIGRAM_LENGTH",
    "fts_string",
    "like_pattern",
    "parse_terms",
    "snippet",
]

MAX_QUERY_CHARS = 256
MAX_TERMS = 8
# The trigram index finds terms of at least this many characters; shorter ones are scanned.
TRIGRAM_LENGTH = 3
SNIPPET_CHARS = 90

_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')


def _clean(text: str) -> str:
    """Control characters become spaces; lone surrogates (not encodable for SQLite) go."""
    out = []
    for char in text[:MAX_QUERY_CHARS]:
        category = unicodedata.category(char)
        if category == "Cs":
            continue
        out.append(" " if category == "Cc" else char)
    return "".join(out)


def parse_terms(text: str) -> list[str]:
    """The distinct terms of a search, in order (at most `MAX_TERMS`); empty for blank text."""
    terms: list[str] = []
    for match in _TERM.finditer(_clean(text)):
        term = " ".join((match.group(1) if match.group(1) is not None else match.group(2)).split())
        if term and term.lower() not in {t.lower() for t in terms}:
            terms.append(term)
        if len(terms) == MAX_TERMS:
            break
    return terms


def fts_string(term: str) -> str:
    """``term`` as one FTS5 string: every character literal, quotes doubled."""
    return '"' + term.replace('"', '""') + '"'


def like_pattern(term: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) finding ``term`` anywhere, its ``%``/``_`` literal."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@functools.lru_cache(maxsize=32)
def _finder(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern finding any term, ignoring case; a space in a term matches any white space."""
    parts = [re.escape(t).replace("\\ ", r"\s+") for t in sorted(terms, key=len, reverse=True)]
    return re.compile("|".join(p for p in parts if p), re.IGNORECASE) if any(parts) else None


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str | None:
    """One line of ``text`` around the first term found in it (ignoring case), or None.

    Cut at word boundaries where possible and marked with "…" where text was left out. Only a
    window around the match is processed, however long the message.
    """
    finder = _finder(tuple(terms))
    raw = finder.search(text) if finder is not None else None
    if finder is None or raw is None:
        return None
    before, after = raw.start() - 2 * width, raw.end() + 2 * width
    flat = " ".join(text[max(0, before) : after].split())
    found = finder.search(flat)
    if found is None:
        return None
    start = max(0, found.start() - width // 3)
    end = min(len(flat), start + width)
    start = max(0, min(start, end - width))
    if start > 0:
        space = flat.find(" ", start, found.start())
        start = space + 1 if space >= 0 else start
    if end < len(flat):
        space = flat.rfind(" ", found.end(), end)
        end = space if space >= 0 else end
    cut_before = start > 0 or before > 0
    cut_after = end < len(flat) or after < len(text)
    return ("…" if cut_before else "") + flat[start:end] + ("…" if cut_after else "")
