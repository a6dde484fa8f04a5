"""A prompt format that lets a base model (one never tuned to chat) answer questions.

A base model only continues text. Written as a ``User:`` / ``Assistant:`` transcript, a
conversation reads to it like any web page: it echoes the system prompt, invents the next
speaker's lines and rambles on. Framed as a short quiz with two answered examples, the text it
finds most likely to come next is one short, correct answer, and the blank line after it (or the
next ``Question:``) is where the turn ends.

The frame is part of the prompt only: it is never shown, never stored as messages, and the stop
strings cut the reply at the next turn marker so it is exactly one answer. The examples are
deliberately unlike any benchmark question (``bench/base_qa.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

QUESTION = "Question:"
ANSWER = "Answer:"
TURN_GAP = "\n\n"
# What the model would write to start the next turn: any of these ends the reply.
STOPS = ("\n" + QUESTION, "\n" + ANSWER, TURN_GAP)
_INTRO = "Below are questions, each followed by its short, correct answer."
_EXAMPLES = (
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("Who discovered penicillin?", "Alexander Fleming discovered penicillin in 1928."),
)


def render(turns: Sequence[dict[str, str]], bos_token: str, add_generation_prompt: bool) -> str:
    """The hidden quiz frame, then the conversation as question/answer pairs.

    Args:
        turns: normalized turns (`chat_format.normalize_messages` with the system prompt not
            folded), alternating user/assistant and starting with the user.
        bos_token: text of the model's beginning-of-sequence token ("" for none).
        add_generation_prompt: end with ``Answer:`` so the model answers the last question.
    """
    system = " ".join(_one_paragraph(t["content"]) for t in turns if t["role"] == "system")
    parts = [bos_token, f"{system}{TURN_GAP}" if system else "", _INTRO, TURN_GAP]
    for question, answer in _EXAMPLES:
        parts.append(f"{QUESTION} {question}\n{ANSWER} {answer}{TURN_GAP}")
    for turn in turns:
        if turn["role"] == "user":
            parts.append(f"{QUESTION} {_one_paragraph(turn['content'])}\n")
        elif turn["role"] == "assistant":
            parts.append(f"{ANSWER} {_one_paragraph(turn['content'])}{TURN_GAP}")
    if add_generation_prompt:
        parts.append(ANSWER)
    return "".join(parts)


def _one_paragraph(text: str) -> str:
    """Blank lines inside a turn would read as the end of it: keep one paragraph."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())
