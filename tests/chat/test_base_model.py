"""Base models: the hidden question-and-answer frame, text completion, and what gets saved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slmdesk.chat.conversations import ConversationStore
from slmdesk.chat.session import COMPLETE, ChatSession
from slmdesk.llama.engine import ChatEngine, SamplingSettings
from slmdesk.models import base_qa, synth
from slmdesk.models.chat_format import ChatFormat, looks_instruction_tuned
from slmdesk.models.completion import DESCRIPTION as COMPLETION_DESCRIPTION
from slmdesk.models.completion import CompletionFormat
from slmdesk.models.gguf_info import read_gguf_info

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
FRAME_WORDS = (base_qa.QUESTION, base_qa.ANSWER, "short, correct answer", "penicillin")


def test_a_base_model_without_a_template_gets_the_hidden_question_and_answer_frame() -> None:
    fmt = ChatFormat(None, architecture="gemma3", bos_token="<bos>", base_model=True)
    assert (fmt.source, fmt.family, fmt.base_model) == ("fallback", "qa", True)
    assert "looks like a base model" in fmt.description
    prompt = fmt.render(CONVERSATION)
    assert prompt.startswith("<bos>Be brief.\n\nBelow are questions")
    assert prompt.endswith(
        "Question: Hello there\nAnswer: Hi! How can I help?\n\nQuestion: What is 2+2?\nAnswer:"
    )
    assert prompt.count("Be brief.") == 1
    # the next turn marker ends the reply, so it is one answer
    assert {"\nQuestion:", "\n\n"} <= set(fmt.stop_strings)
    assert fmt.as_dict()["base_model"] is True


def test_blank_lines_inside_a_question_do_not_end_its_turn() -> None:
    fmt = ChatFormat(None, architecture="llama", base_model=True)
    prompt = fmt.render([{"role": "user", "content": "First line.\n\n\nSecond line."}])
    assert prompt.endswith("Question: First line.\nSecond line.\nAnswer:")


def test_only_a_model_without_template_and_without_a_tuning_hint_is_a_base_model(
    tmp_path: Path, tiny_model: Path, tiny_model_no_template: Path
) -> None:
    assert not ChatFormat.from_info(read_gguf_info(tiny_model)).base_model  # has a template
    base = ChatFormat.from_info(read_gguf_info(tiny_model_no_template))
    assert base.base_model and base.family == "qa"
    tuned_path = synth.write_tiny_llama(
        tmp_path / "tiny-chat.gguf",
        synth.TinyModelSpec(with_chat_template=False, name="Tiny Test Instruct"),
    )
    tuned_info = read_gguf_info(tuned_path)
    assert looks_instruction_tuned(tuned_info)
    tuned = ChatFormat.from_info(tuned_info)
    assert not tuned.base_model and tuned.family != "qa"
    assert "base model" not in tuned.description


def test_a_chosen_format_keeps_saying_it_is_a_base_model() -> None:
    fmt = ChatFormat(None, architecture="gemma3", base_model=True, fallback="plain")
    assert fmt.family == "plain" and fmt.base_model


def test_text_completion_sends_only_the_text() -> None:
    chat = ChatFormat(
        None, architecture="gemma3", bos_token="<bos>", eos_token="<eos>", base_model=True
    )
    fmt = CompletionFormat(chat)
    assert fmt.render(CONVERSATION) == "<bos>What is 2+2?"
    assert fmt.stop_strings == ("<eos>",)
    assert fmt.as_dict()["source"] == "completion"


@pytest.fixture
def base_engine(tiny_model_no_template: Path) -> Iterator[ChatEngine]:
    engine = ChatEngine()
    engine.load(tiny_model_no_template, context_length=512, n_threads=2)
    yield engine
    engine.unload()


def test_engine_text_completion_evaluates_the_text_alone(base_engine: ChatEngine) -> None:
    text = "once upon a time there was"
    expected = len(base_engine._prompt_tokens(base_engine.chat_format.bos_token + text))
    messages = [*CONVERSATION[:3], {"role": "user", "content": text}]
    chat = base_engine.generate(messages, SamplingSettings(seed=1, max_tokens=4))
    assert chat.timings.prompt_tokens > expected + 20  # the hidden frame and the history
    done = base_engine.generate(messages, SamplingSettings(seed=1, max_tokens=4), complete=True)
    assert done.timings.prompt_tokens == expected
    assert done.format_description == COMPLETION_DESCRIPTION
    assert done.timings.dropped_messages == 0


def test_the_frame_is_never_saved_and_completion_is_chosen_per_reply(
    base_engine: ChatEngine,
) -> None:
    with ConversationStore() as store:
        conversation = store.create(system_prompt="You are a helpful assistant.")
        session = ChatSession(base_engine, store, conversation.id)
        first = session.reply("what is the capital", {"seed": 3, "max_tokens": 8})
        assert first.format_description.startswith("question-and-answer format")
        second = session.reply("the cat sat", {"seed": 3, "max_tokens": 8, "mode": COMPLETE})
        assert second.format_description == COMPLETION_DESCRIPTION
        # the stored conversation's own settings choose the mode when none is passed
        store.update_settings(conversation.id, settings={"mode": COMPLETE})
        third = session.reply("a dog ran", SamplingSettings(seed=3, max_tokens=8))
        assert third.format_description == COMPLETION_DESCRIPTION
        saved = store.get(conversation.id).messages
    assert [m.role for m in saved] == ["user", "assistant"] * 3
    assert [m.text for m in saved if m.role == "user"] == [
        "what is the capital",
        "the cat sat",
        "a dog ran",
    ]
    for message in saved:
        assert not any(word in message.text for word in FRAME_WORDS), message.text


def test_an_unknown_session_mode_is_refused(base_engine: ChatEngine) -> None:
    with pytest.raises(ValueError, match="unknown chat mode"):
        ChatSession(base_engine, mode="poetry")


@pytest.mark.integration
def test_gemma_answers_one_question_in_one_short_answer(gemma_model: Path) -> None:
    engine = ChatEngine()
    try:
        engine.load(gemma_model, context_length=1024, n_threads=2)
        assert engine.chat_format.family == "qa" and engine.chat_format.base_model
        shown: list[str] = []
        result = engine.generate(
            [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Who wrote Romeo and Juliet?"},
            ],
            SamplingSettings(temperature=0.0, max_tokens=48),
            on_token=shown.append,
        )
        assert "Shakespeare" in result.text
        assert result.timings.finish_reason == "stop"  # ended at the next turn marker
        assert result.timings.generated_tokens < 48
        for text in (result.text, "".join(shown)):
            assert "\n" not in text.strip()
            assert not any(word in text for word in FRAME_WORDS)
            assert "helpful assistant" not in text
    finally:
        engine.unload()
