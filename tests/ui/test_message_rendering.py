"""How a reply is shown: Markdown only, nothing loaded, no control tokens, coloured code, a
reading width, and the same rendering in the chat and the side-by-side view.

Real widgets, real files and a real local HTTP server; what a label shows is read back through a
QTextDocument of the label's own text format (what the label itself lays out).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication, QLabel

from slmdesk.ui.chat.message_widget import CodeBlock, MessageWidget
from slmdesk.ui.chat.view import MessageList

# -- helpers -----------------------------------------------------------------------------------


def _reply(qtbot, text: str, finished: bool = True, width: int = 700) -> MessageWidget:
    widget = MessageWidget("assistant", text, 1, "Model", finished=finished)
    qtbot.addWidget(widget)
    widget.resize(width, 400)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _parts(widget: MessageWidget) -> list[QLabel | CodeBlock]:
    found = []
    for i in range(widget.body.count()):
        item = widget.body.itemAt(i).widget()
        if isinstance(item, QLabel | CodeBlock):
            found.append(item)
    return found


def _prose(widget: MessageWidget) -> list[QLabel]:
    return [p for p in _parts(widget) if isinstance(p, QLabel)]


def _code(widget: MessageWidget) -> list[CodeBlock]:
    return [p for p in _parts(widget) if isinstance(p, CodeBlock)]


def _document(label: QLabel) -> QTextDocument:
    """What ``label`` lays out: its text parsed the way its text format says."""
    document = QTextDocument()
    text_format = label.textFormat()
    if text_format == Qt.TextFormat.MarkdownText:
        document.setMarkdown(label.text())
    elif text_format == Qt.TextFormat.PlainText:
        document.setPlainText(label.text())
    else:
        document.setHtml(label.text())
    return document


def _shown(widget: MessageWidget) -> str:
    return "\n".join(_document(label).toPlainText() for label in _prose(widget))


def _fragments(label: QLabel) -> Iterator:
    document = _document(label)  # kept alive while its fragments are read
    block = document.begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            yield iterator.fragment()
            iterator += 1
        block = block.next()


def _red_pixels(widget: MessageWidget) -> int:
    image = widget.grab().toImage()
    return sum(
        1
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
        if image.pixelColor(x, y).red() > 200
        and image.pixelColor(x, y).green() < 60
        and image.pixelColor(x, y).blue() < 60
    )


# -- HTML, resources, links ---------------------------------------------------------------------


def test_html_in_a_reply_is_shown_as_text(qtbot) -> None:
    text = "Wrap it in <code>print()</code>; the answer is <b>Paris</b>."
    widget = _reply(qtbot, text)
    assert _shown(widget) == text
    bold = [
        f.text()
        for lab in _prose(widget)
        for f in _fragments(lab)
        if f.charFormat().fontWeight() > 400
    ]
    assert bold == []


def test_markdown_still_formats(qtbot) -> None:
    widget = _reply(qtbot, "Some **bold** and a list:\n\n- one\n- two")
    (label,) = _prose(widget)
    bold = [f.text() for f in _fragments(label) if f.charFormat().fontWeight() > 400]
    assert bold == ["bold"]
    assert _document(label).toPlainText().splitlines()[-2:] == ["one", "two"]


def test_control_tokens_leave_prose_but_stay_in_code(qtbot) -> None:
    text = (
        "Paris<start_of_image> is the answer.<|im_end|> Gemma ends a turn with `<end_of_turn>`.\n"
        "```\n<start_of_turn>user\nHello<end_of_turn>\n```"
    )
    widget = _reply(qtbot, text)
    assert _shown(widget) == "Paris is the answer. Gemma ends a turn with <end_of_turn>."
    (block,) = _code(widget)
    assert block.source == "<start_of_turn>user\nHello<end_of_turn>"
    assert "<start_of_turn>user" in _document(block.code).toPlainText()


def test_images_in_a_reply_load_no_local_file(qtbot, tmp_path: Path, gui_guard) -> None:
    picture = tmp_path / "secret.png"
    red = QImage(240, 120, QImage.Format.Format_RGB32)
    red.fill(QColor(255, 0, 0))
    with gui_guard.allowed():
        assert red.save(str(picture))
    uri = picture.as_uri()
    text = (
        f"Markdown: ![a secret]({uri})\n\nA path: ![x]({picture})\n\n"
        f'HTML: <img src="{picture}"> <img src="{uri}">\n\n[![nested]({uri})](https://example.org)\n\n'
        f"A reference: ![ref][pic] and ![pic]\n\n[pic]: {uri}"
    )
    widget = _reply(qtbot, text)
    assert _red_pixels(widget) == 0
    for label in _prose(widget):
        assert not any(f.charFormat().isImageFormat() for f in _fragments(label))
    assert "[a secret]" in _shown(widget)  # the alt text says an image was there


class _CountingHandler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    _CountingHandler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _CountingHandler.hits
    server.shutdown()
    server.server_close()
    thread.join()


def test_images_in_a_reply_fetch_nothing_from_the_network(qtbot, http_server) -> None:
    base, hits = http_server
    widget = _reply(qtbot, f"![remote]({base}/a.png) <img src='{base}/b.png'>")
    widget.grab()
    deadline = time.monotonic() + 0.5  # give a fetch every chance to start; nothing must come
    while time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    assert hits == []


def test_links_open_only_web_addresses(qtbot) -> None:
    text = (
        "[web](https://example.org) [mail](mailto:a@example.org) [file](file:///etc/passwd) "
        "[script](javascript:alert(1)) [relative](notes.txt) <javascript:alert(2)>"
    )
    widget = _reply(qtbot, text)
    (label,) = _prose(widget)
    links = [f.charFormat().anchorHref() for f in _fragments(label) if f.charFormat().isAnchor()]
    assert links == ["https://example.org", "mailto:a@example.org"]
    assert _shown(widget) == "web mail file script relative javascript:alert(2)"


# -- the side-by-side view ----------------------------------------------------------------------


def test_side_by_side_shows_replies_like_the_chat(qtbot) -> None:
    from slmdesk.ui.optimize.ab_chat import ABPane

    text = "The capital is <b>Paris</b>.<start_of_image>\n\n```python\nx = 1\n```"
    pane = ABPane("Original")
    qtbot.addWidget(pane)
    pane.resize(700, 500)
    pane.show()
    pane.append_prompt("Capital of <i>France</i>?")
    for piece in (text[:9], text[9:30], text[30:]):
        pane.append_text(piece)
    pane.finish_reply({"generated_tokens": 9, "tokens_per_second": 3.0})
    prompt, reply = pane.transcript.messages
    assert isinstance(reply, MessageWidget)
    chat = _reply(qtbot, text)
    assert _shown(reply) == _shown(chat) == "The capital is <b>Paris</b>."
    assert [b.highlighted for b in _code(reply)] == [b.highlighted for b in _code(chat)] == [True]
    assert prompt.text == "Capital of <i>France</i>?"
    assert "You: Capital of <i>France</i>?" in pane.transcript.toPlainText()


# -- code colours -------------------------------------------------------------------------------

CODE = 'def answer(city: str) -> str:\n    # a comment\n    return "<b>" + city  # tags stay text\n'


def _colours(block: CodeBlock) -> set[str]:
    return {c.upper() for c in re.findall(r"color:\s*(#[0-9A-Fa-f]{6})", block.code.text())}


def test_a_code_block_is_coloured_once_it_is_complete(qtbot) -> None:
    widget = _reply(qtbot, "", finished=False)
    widget.append("Here:\n```python\n")
    for line in CODE.splitlines(keepends=True):
        widget.append(line)
        (block,) = _code(widget)
        assert not block.highlighted  # still streaming: plain text, cheap per update
        assert block.code.textFormat() == Qt.TextFormat.PlainText
    widget.append("```\nDone.")
    (block,) = _code(widget)
    assert block.highlighted
    assert len(_colours(block)) >= 3
    assert _document(block.code).toPlainText().rstrip("\n") == CODE.rstrip("\n")


def test_a_block_left_open_is_coloured_when_the_reply_ends(qtbot) -> None:
    widget = _reply(qtbot, "", finished=False)
    widget.append("```python\n" + CODE)
    (block,) = _code(widget)
    assert not block.highlighted
    widget.set_finished(True, {"generated_tokens": 3})
    assert block.highlighted
    (saved,) = _code(_reply(qtbot, "```python\n" + CODE))  # a saved reply that never closed it
    assert saved.highlighted


def test_unknown_languages_stay_plain(qtbot) -> None:
    widget = _reply(qtbot, "```no-such-language\n<b>x</b>\n```\n```\nplain\n```")
    blocks = _code(widget)
    assert [_colours(b) for b in blocks] == [set(), set()]
    assert [_document(b.code).toPlainText().strip() for b in blocks] == ["<b>x</b>", "plain"]


def _contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
        )

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def restore_theme() -> Iterator[QApplication]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    palette, sheet, style = QPalette(app.palette()), app.styleSheet(), app.style().name()
    yield app
    app.setStyle(style)
    app.setPalette(palette)
    app.setStyleSheet(sheet)


def test_code_colours_are_readable_in_light_and_dark(qtbot, restore_theme) -> None:
    from slmdesk.ui.theme import apply_theme

    code = (
        "```python\nimport os\n\n@decorator\nclass A(Base):\n    '''doc'''\n    x: int = 0x1F\n"
        "    def f(self, *a, **k):\n        return f'{self.x!r}' + r'\\d' if a else None  # c\n```"
    )
    seen: dict[str, set[str]] = {}
    for theme in ("light", "dark"):
        apply_theme(restore_theme, theme)
        widget = _reply(qtbot, code)
        (block,) = _code(widget)
        background = widget.palette().color(QPalette.ColorRole.Window)
        colours = _colours(block)
        assert len(colours) >= 4
        for colour in colours:
            assert _contrast(QColor(colour), background) >= 3.0, (theme, colour)
        seen[theme] = colours
    assert seen["light"] != seen["dark"]


def test_a_block_recolours_when_the_theme_changes(qtbot, restore_theme) -> None:
    from slmdesk.ui.theme import apply_theme

    apply_theme(restore_theme, "light")
    widget = _reply(qtbot, "```python\n" + CODE + "```")
    (block,) = _code(widget)
    light = _colours(block)
    apply_theme(restore_theme, "dark")
    qtbot.waitUntil(lambda: _colours(block) != light, timeout=5_000)
    background = widget.palette().color(QPalette.ColorRole.Window)
    assert all(_contrast(QColor(c), background) >= 3.0 for c in _colours(block))


def test_a_huge_code_block_is_coloured_in_bounded_time(qtbot) -> None:
    from slmdesk.ui.chat.highlight import HIGHLIGHT_BUDGET, highlighted_html

    code = "def f(x):\n    return x * 2  # twice\n" * 20_000  # about 700 KB
    started = time.perf_counter()
    rich = highlighted_html(code, "python", dark=False)
    elapsed = time.perf_counter() - started
    assert elapsed < HIGHLIGHT_BUDGET + 3.0  # the budget plus escaping the rest; a loaded machine
    document = QTextDocument()
    document.setHtml(rich)
    assert document.toPlainText().rstrip("\n") == code.rstrip("\n")  # nothing lost past the budget
    assert 'style="color' in rich[:2000]  # the start is coloured
    assert 'style="color' not in rich[-2000:]  # the end, past the budget, is plain


# -- reading width ------------------------------------------------------------------------------


def test_messages_keep_a_reading_width_in_a_wide_window(qtbot) -> None:
    messages = MessageList()
    qtbot.addWidget(messages)
    messages.resize(1800, 600)
    long_text = "A long line of prose that would run across the whole window. " * 20
    reply = MessageWidget("assistant", long_text, 1, "Model")
    question = MessageWidget("user", long_text, 2, "You")
    messages.add(question)
    messages.add(reply)
    messages.show()
    qtbot.waitExposed(messages)
    qtbot.waitUntil(lambda: reply.width() > 0)
    assert messages.viewport().width() > 1500  # the window really is wide
    assert 500 <= reply.width() <= 1100 and 500 <= question.width() <= 1100

    from slmdesk.ui.chat.message_widget import reading_width

    assert reply.width() <= reading_width(reply)


def test_a_capped_message_gets_the_height_its_text_needs_at_the_capped_width(qtbot) -> None:
    # A paragraph that fits on one line of the wide window but wraps at the reading width, then
    # a code block: the layout must size the message for the width it really has.
    paragraph = "For example, a sentence long enough to wrap at the reading width. " * 3
    text = f"{paragraph}\n\n```python\ndef f():\n    return 1\n```\n\n{paragraph}"
    messages = MessageList()
    qtbot.addWidget(messages)
    messages.resize(1800, 700)
    reply = MessageWidget("assistant", text, 1, "Model")
    messages.add(reply)
    messages.show()
    qtbot.waitExposed(messages)
    qtbot.waitUntil(lambda: reply.width() > 0)

    from slmdesk.ui.chat.message_widget import reading_width

    assert reply.width() <= reading_width(reply)
    qtbot.waitUntil(lambda: reply.height() >= reply.heightForWidth(reply.width()), timeout=2000)
    for part in _parts(reply):
        label = part.code if isinstance(part, CodeBlock) else part
        assert label.height() >= label.heightForWidth(label.width())  # no line cut off


def test_a_streaming_block_loads_its_lexer_off_the_gui_thread(qtbot) -> None:
    import sys

    assert "pygments.lexers.fortran" not in sys.modules  # no other test colours Fortran
    widget = _reply(qtbot, "", finished=False)
    widget.append("```fortran\nprogram hello\n")
    (block,) = _code(widget)
    assert not block.highlighted
    qtbot.waitUntil(lambda: "pygments.lexers.fortran" in sys.modules, timeout=30_000)
    widget.append("  print *, 'hi'\nend program hello\n```")
    assert block.highlighted and len(_colours(block)) >= 2


def test_side_by_side_labels_show_names_as_text(qtbot) -> None:
    from slmdesk.ui.optimize.ab_chat import ABPane

    pane = ABPane("Original")
    qtbot.addWidget(pane)
    pane.model_label.setText("<b>bold</b>-model")
    pane.status.setText("Could not load: <i>x</i>")
    for label in (pane.model_label, pane.status):
        assert _document(label).toPlainText() == label.text()
