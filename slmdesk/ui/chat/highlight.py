"""Syntax colours for a code block (pygments), bounded in time and readable in both themes.

Pygments is pure Python (about 100 KB of code a second on a busy machine), and it runs on the GUI
thread, so colouring stops at a deadline (`HIGHLIGHT_BUDGET`): the rest of a huge block is shown
plain. Only a block that names its language is coloured (guessing a lexer runs every lexer on
the text). The caller colours a block once, when it is complete; a block still streaming stays
plain text, which costs nothing per update. Loading a language's lexer the first time costs 10 to
300 ms (import and regex compilation), so `warm_up` does it on a pool thread as soon as a block
names its language, while the block is still streaming.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from functools import cache

from pygments import format
from pygments.formatter import Formatter
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Token, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtCore import QThreadPool

HIGHLIGHT_BUDGET = 0.03  # seconds of lexing and formatting per block
_CHECK_EVERY = 32  # tokens between looks at the clock
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"


@cache
def _lexer(language: str) -> Lexer | None:
    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=False, stripall=False)
    except (ClassNotFound, ValueError):
        return None


@cache
def _formatter(dark: bool) -> Formatter[str]:
    # inline styles (a label has no style sheet for classes); the card's own background shows
    return HtmlFormatter(
        style=DARK_STYLE if dark else LIGHT_STYLE, noclasses=True, nowrap=True, nobackground=True
    )


def _pre(body: str) -> str:
    return f'<pre style="margin:0; white-space:pre-wrap;">{body}</pre>'


def plain_html(code: str) -> str:
    """``code`` as escaped, wrapped monospace rich text (no colours)."""
    return _pre(html.escape(code, quote=False))


def lexer_for(language: str) -> Lexer | None:
    """The lexer of a fence's language name (``py``, ``Python``, ``c++``), None when unknown."""
    return _lexer(language.strip().lower()) if language.strip() else None


def warm_up(language: str) -> None:
    """Load ``language``'s lexer on a pool thread, so colouring the finished block does not."""
    key = language.strip().lower()
    if key and key not in _warming:
        _warming.add(key)
        QThreadPool.globalInstance().start(lambda: _lexer(key))


_warming: set[str] = set()  # languages whose lexer is loaded or being loaded (GUI thread only)


def _until(lexer: Lexer, code: str, deadline: float) -> Iterator[tuple[_TokenType, str]]:
    """``code``'s tokens until ``deadline``, then the rest of it as one plain token."""
    end = 0
    for count, (start, kind, value) in enumerate(lexer.get_tokens_unprocessed(code)):
        yield kind, value
        end = start + len(value)
        if count % _CHECK_EVERY == 0 and time.perf_counter() > deadline:
            break
    if end < len(code):
        yield Token.Text, code[end:]


def highlighted_html(code: str, language: str, dark: bool, budget: float = HIGHLIGHT_BUDGET) -> str:
    """Rich text of ``code`` coloured for ``language`` within ``budget`` seconds.

    Unknown languages are plain; past the budget the rest of the block is plain.
    """
    lexer = lexer_for(language)
    if lexer is None:
        return plain_html(code)
    code = code.replace("\r\n", "\n")
    deadline = time.perf_counter() + budget
    return _pre(format(_until(lexer, code, deadline), _formatter(dark)))
