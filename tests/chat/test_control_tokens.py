"""Control-token markers leave a reply's prose; code spans, HTML and ordinary text stay."""

from __future__ import annotations

import time

import pytest

from slmdesk.chat.control_tokens import strip_control_tokens


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Paris<start_of_image>", "Paris"),
        ("<start_of_turn>model\nHi<end_of_turn>", "model\nHi"),
        ("Done.<|im_end|>", "Done."),
        ("<|begin_of_text|><|start_header_id|>x<|end_header_id|>", "x"),
        ("<bos>Hello<eos>", "Hello"),
        ("a<image_soft_token><image_soft_token>b", "ab"),
    ],
)
def test_markers_are_removed(text: str, shown: str) -> None:
    assert strip_control_tokens(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is <b>Paris</b>.",
        "Use <code>print()</code> and <img src='x.png'> in HTML; <s>old</s> <p> <br/>",
        "if a < b and c > d: pass; x <| y |> z",
        "Mail me at <someone@example.org> or see <https://example.org>",
        "A <start of image> with spaces is prose",
        "plain text with no markers at all",
    ],
)
def test_html_and_ordinary_text_stay(text: str) -> None:
    assert strip_control_tokens(text) == text


def test_inline_code_keeps_markers_literally() -> None:
    text = "ChatML ends a turn with `<|im_end|>`; Gemma with ``<end_of_turn>``.<|im_end|>"
    assert strip_control_tokens(text) == (
        "ChatML ends a turn with `<|im_end|>`; Gemma with ``<end_of_turn>``."
    )


def test_an_unclosed_backtick_does_not_protect_the_rest() -> None:
    assert strip_control_tokens("a ` b<|im_end|>") == "a ` b"


def test_html_tags_a_vocabulary_also_holds_stay() -> None:
    # Gemma 3 types <b>, <code> and <table> like <start_of_image>: only the marker goes
    text = "<table><tr><td><b>Paris</b></td></tr></table><start_of_image><end_of_image>"
    assert strip_control_tokens(text) == "<table><tr><td><b>Paris</b></td></tr></table>"


def test_long_text_with_many_backticks_is_linear_enough() -> None:
    text = ("word `code` <|im_end|> " * 20_000) + "`" * 5_000
    started = time.perf_counter()
    cleaned = strip_control_tokens(text)
    assert time.perf_counter() - started < 5  # a generous bound for a loaded machine
    assert "<|im_end|>" not in cleaned.replace("`<|im_end|>`", "")
    assert cleaned.count("`code`") == 20_000
