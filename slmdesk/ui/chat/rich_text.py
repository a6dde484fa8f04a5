"""Model output as Markdown only: HTML shown as text, nothing loaded, links limited to the web.

A reply is untrusted text. Qt's rich text would interpret HTML in it (``<code>`` swallowed text,
``<img src=...>`` reads a local file while the page is laid out), so prose is parsed as Markdown
with HTML turned off, into a document that refuses to load any resource. Images become their
alt text and only ``http``, ``https`` and ``mailto`` links stay clickable. The result is HTML
that names no resource, so the label showing it has nothing to load either.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QFont, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat

from slmdesk.chat.control_tokens import strip_control_tokens

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_MARKDOWN_ONLY = (
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub
    | QTextDocument.MarkdownFeature.MarkdownNoHTML
)

# Text that could hold a link or an image: inline, reference, autolink, bare URL or e-mail address.
_MAYBE_LINK = re.compile(r"\]\(|\]\[|\]:|<[A-Za-z][A-Za-z0-9+.-]{1,31}:|://|www\.|@")


class InertDocument(QTextDocument):
    """A text document that loads nothing: no file, no network, no ``data:`` URL."""

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        """Refuse every resource (Qt would read local files for images)."""
        return None


def _image_alt(image: QTextCharFormat) -> str:
    alt = image.property(QTextFormat.Property.ImageAltText)
    return str(alt) if alt else "image"


def _neutralize(document: QTextDocument) -> None:
    """Images become ``[image: alt]`` text; links outside `LINK_SCHEMES` become plain text."""
    edits: list[tuple[int, int, QTextCharFormat, str | None]] = []  # (at, length, format, text)
    block = document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            fmt = fragment.charFormat()
            if fmt.isImageFormat():
                plain = QTextCharFormat(fmt)
                plain.setObjectType(QTextFormat.ObjectTypes.NoObject)
                plain.clearProperty(QTextFormat.Property.ImageName)
                text = f"[{_image_alt(fmt.toImageFormat())}]"
                edits.append((fragment.position(), fragment.length(), plain, text))
            elif fmt.isAnchor():
                plain = QTextCharFormat(fmt)
                plain.clearForeground()  # the label's palette colours links (light or dark)
                if QUrl(fmt.anchorHref()).scheme().lower() not in LINK_SCHEMES:
                    plain.setAnchor(False)
                    plain.setAnchorHref("")
                    plain.setFontUnderline(False)
                edits.append((fragment.position(), fragment.length(), plain, None))
            iterator += 1
        block = block.next()
    cursor = QTextCursor(document)
    for position, length, fmt, replacement in reversed(edits):  # from the end: positions hold
        cursor.setPosition(position)
        cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
        if replacement is None:
            cursor.setCharFormat(fmt)
        else:
            cursor.insertText(replacement, fmt)


def markdown_document(markdown: str, font: QFont | None = None) -> InertDocument:
    """``markdown`` (control tokens removed) parsed with HTML off, images and odd links disarmed.

    ``font`` is the label's: the HTML names the document's font, so it must be the one shown.
    """
    document = InertDocument()
    if font is not None:
        document.setDefaultFont(font)
    text = strip_control_tokens(markdown)
    document.setMarkdown(text, _MARKDOWN_ONLY)
    if _MAYBE_LINK.search(text):  # the walk costs about as much as parsing: skip it for prose
        _neutralize(document)
    return document


def markdown_html(markdown: str, font: QFont | None = None) -> str:
    """Rich text for a label: the safe rendering of ``markdown``, naming no resource."""
    return markdown_document(markdown, font).toHtml()
