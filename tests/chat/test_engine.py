"""The chat engine on real llama.cpp with the tiny synthesized model (and the Gemma starter)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from slmdesk.common.errors import InvalidModelError, SlmdeskError
from slmdesk.llama.engine import (
    ChatEngine,
    ContextOverflowError,
    EngineError,
    LoadCancelled,
    SamplingSettings,
    _find_stop,
    _held_back,
)
from slmdesk.models import synth

HELLO = [{"role": "user", "content": "hello world, what is the answer?"}]
# With this seed the tiny model writes well past 40 tokens before any end-of-turn token.
LONG = SamplingSettings(seed=1, max_tokens=300)


def test_load_reports_the_model_and_its_format(engine: ChatEngine, tiny_model: Path) -> None:
    loaded = engine.loaded
    assert loaded is not None and engine.is_loaded
    assert loaded.path == tiny_model
    assert loaded.context_length == 512
    assert loaded.n_threads == 2
    assert engine.chat_format.source == "template"
    assert engine.chat_format.bos_token == "<s>" and engine.chat_format.eos_token == "</s>"
    assert "<|im_end|>" in engine.chat_format.stop_strings


def test_default_context_and_threads(tiny_model: Path) -> None:
    from slmdesk.models.hardware import machine_info

    engine = ChatEngine()
    progress: list[float] = []
    try:
        loaded = engine.load(tiny_model, progress=progress.append)
        assert loaded.context_length == 2048  # the model's own (below the 4096 default cap)
        assert loaded.n_threads == machine_info().physical_cores
        assert progress and progress[-1] == 1.0
        assert all(0.0 <= p <= 1.0 for p in progress)
    finally:
        engine.unload()
    assert not engine.is_loaded


def test_streams_token_by_token(engine: ChatEngine) -> None:
    pieces: list[str] = []
    result = engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=24), on_token=pieces.append)
    assert "".join(pieces) == result.text
    assert len(pieces) > 5
    t = result.timings
    assert t.finish_reason in ("length", "stop")
    assert 0 < t.generated_tokens <= 24
    assert t.prompt_tokens == t.evaluated_tokens + t.reused_tokens > 0
    assert t.time_to_first_token > 0 and t.tokens_per_second > 0
    assert result.format_description == "the model's own chat template"
    assert set(t.to_dict()) >= {"prompt_tokens", "reused_tokens", "generated_tokens"}


def test_same_seed_same_reply_other_seed_other_reply(engine: ChatEngine) -> None:
    settings = SamplingSettings(seed=7, max_tokens=20)
    first = engine.generate(HELLO, settings).text
    engine.reset_cache()
    again = engine.generate(HELLO, settings).text
    # With the prompt cached only its last token is evaluated again; batched and single-token
    # evaluation round differently, so compare cached runs with cached runs.
    cached = engine.generate(HELLO, settings).text
    cached_again = engine.generate(HELLO, settings).text
    engine.reset_cache()
    other = engine.generate(HELLO, SamplingSettings(seed=8, max_tokens=20)).text
    assert first == again
    assert cached == cached_again
    assert other != first


def test_stop_event_from_another_thread_stops_within_one_token(engine: ChatEngine) -> None:
    stop = threading.Event()
    enough = threading.Event()
    pieces: list[str] = []
    at_stop: list[int] = []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 5:
            enough.set()
            assert stop.wait(5.0)  # hold this token until the other thread asked to stop
            at_stop.append(len(pieces))

    def stopper() -> None:
        enough.wait(10.0)
        stop.set()

    thread = threading.Thread(target=stopper, name="slmdesk-test-stopper")
    thread.start()
    try:
        result = engine.generate(HELLO, LONG, on_token=on_token, stop_event=stop)
    finally:
        thread.join()
    assert result.timings.finish_reason == "cancelled"
    assert at_stop == [5]
    assert len(pieces) <= 6  # at most the piece being decoded when the stop came
    assert result.text == "".join(pieces)
    assert result.timings.generated_tokens < 40


def test_stop_before_start_returns_an_empty_reply(engine: ChatEngine) -> None:
    stop = threading.Event()
    stop.set()
    result = engine.generate(HELLO, LONG, stop_event=stop)
    assert result.text == "" and result.timings.finish_reason == "cancelled"


def test_follow_up_turn_evaluates_only_the_new_tokens(engine: ChatEngine) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "be short"}, *HELLO]
    first = engine.generate(messages, SamplingSettings(seed=3, max_tokens=30))
    assert first.timings.reused_tokens == 0
    messages += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "and what about the water?"},
    ]
    second = engine.generate(messages, SamplingSettings(seed=3, max_tokens=30))
    t = second.timings
    # The whole first turn (its prompt and reply) comes from the cache.
    assert t.reused_tokens >= first.timings.prompt_tokens + first.timings.generated_tokens - 1
    assert t.evaluated_tokens < t.prompt_tokens / 2
    # Regenerating the same turn re-evaluates a single token: everything else is reused.
    third = engine.generate(messages, SamplingSettings(seed=3, max_tokens=30))
    assert third.timings.evaluated_tokens == 1
    assert third.timings.reused_tokens == third.timings.prompt_tokens - 1 == t.prompt_tokens - 1
    # The second reply's prompt was evaluated in one batch, the third's last token alone; the two
    # round differently on some CPUs, so their texts are not compared. Two regenerations from the
    # same cache state evaluate identically and give the same reply.
    fourth = engine.generate(messages, SamplingSettings(seed=3, max_tokens=30))
    assert fourth.timings.evaluated_tokens == 1
    assert fourth.text == third.text


def test_history_beyond_the_context_drops_the_oldest_turns(engine: ChatEngine) -> None:
    system = {"role": "system", "content": "the system prompt stays"}
    turn = "the water of the world is " + "long " * 40
    messages: list[dict[str, Any]] = [system]
    for i in range(12):
        messages.append({"role": "user", "content": f"question {i}: {turn}"})
        messages.append({"role": "assistant", "content": f"answer {i}: {turn}"})
    messages.append({"role": "user", "content": "the last question"})
    kept, prompt, dropped = engine.fit_messages(messages, reply_room=64)
    assert dropped > 0 and kept[0] == system and kept[-1] == messages[-1]
    assert kept[1]["role"] == "user"  # history restarts with a user turn
    assert "the system prompt stays" in prompt and "question 0:" not in prompt
    result = engine.generate(messages, SamplingSettings(seed=1, max_tokens=64))
    assert result.dropped_messages == result.timings.dropped_messages == dropped
    assert result.timings.prompt_tokens + 64 <= 512


def test_a_single_message_longer_than_the_context_is_a_clear_error(engine: ChatEngine) -> None:
    huge = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(ContextOverflowError, match="too long for this model's context"):
        engine.generate(huge, LONG)
    assert isinstance(ContextOverflowError("x"), SlmdeskError)
    # The engine still works afterwards.
    assert engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=4)).timings.generated_tokens


def test_bad_requests(engine: ChatEngine) -> None:
    with pytest.raises(EngineError, match="empty"):
        engine.generate([{"role": "user", "content": "   "}])
    with pytest.raises(EngineError, match="end with a message from you"):
        engine.generate([{"role": "assistant", "content": "hi"}])
    with pytest.raises(EngineError, match="temperature"):
        engine.generate(HELLO, SamplingSettings(temperature=-1))
    with pytest.raises(EngineError, match="Unknown chat format"):
        engine.load(engine.loaded.path, chat_format="klingon")


def test_no_model_loaded_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="No model is loaded"):
        ChatEngine().generate(HELLO)


def test_reply_limited_by_max_tokens(engine: ChatEngine) -> None:
    result = engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=3))
    assert result.timings.generated_tokens == 3
    assert result.timings.finish_reason == "length"


def test_sampling_settings_round_trip_and_validation() -> None:
    settings = SamplingSettings(temperature=0.2, seed=5, max_tokens=64)
    assert SamplingSettings.from_dict(settings.to_dict()) == settings
    assert SamplingSettings.from_dict({"top_k": "12", "unknown": 1}).top_k == 12
    assert SamplingSettings.from_dict(None) == SamplingSettings()
    with pytest.raises(EngineError, match="not a number"):
        SamplingSettings.from_dict({"temperature": "hot"})
    with pytest.raises(EngineError, match="top-p"):
        SamplingSettings.from_dict({"top_p": 0})


def test_non_gguf_and_truncated_files_are_refused_before_llama_cpp(
    tmp_path: Path, tiny_model: Path
) -> None:
    engine = ChatEngine()
    text = tmp_path / "notes.gguf"
    text.write_text("definitely not a model")
    with pytest.raises(InvalidModelError, match="not a GGUF model file"):
        engine.load(text)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:200_000])
    with pytest.raises(InvalidModelError, match="truncated"):
        engine.load(cut)
    with pytest.raises(InvalidModelError, match="does not exist"):
        engine.load(tmp_path / "missing.gguf")
    assert not engine.is_loaded


def test_model_file_deleted_while_loaded(tiny_model: Path) -> None:
    engine = ChatEngine()
    engine.load(tiny_model, context_length=512)
    try:
        tiny_model.unlink()
        # The loaded model keeps working (its pages are mapped)...
        assert engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=4)).text is not None
        # ...and loading it again says what happened, keeping the loaded one usable.
        with pytest.raises(InvalidModelError, match="does not exist"):
            engine.load(tiny_model)
        assert engine.is_loaded
        assert engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=2)).timings
    finally:
        engine.unload()


def test_cancelled_load(tiny_model: Path) -> None:
    engine = ChatEngine()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LoadCancelled):
        engine.load(tiny_model, cancel=cancel)
    with pytest.raises(LoadCancelled, match="cancelled"):
        engine.load(tiny_model, progress=lambda fraction: False)
    assert not engine.is_loaded
    engine.load(tiny_model, context_length=512)  # and a normal load still works afterwards
    engine.unload()


def test_switching_models_without_restarting(
    tiny_model: Path, tiny_model_no_template: Path
) -> None:
    engine = ChatEngine()
    try:
        engine.load(tiny_model, context_length=512)
        assert engine.chat_format.source == "template"
        engine.load(tiny_model_no_template, context_length=512)
        assert engine.chat_format.family == "qa"
        result = engine.generate(HELLO, SamplingSettings(seed=2, max_tokens=8))
        assert result.format_description.startswith(
            "question-and-answer format for base models (fallback: "
        )
    finally:
        engine.unload()


def test_broken_template_in_the_model_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "CHATML_TEMPLATE", "{% for m in messages %}{{ m.content }")
    path = synth.write_tiny_llama(tmp_path / "broken-template.gguf")
    engine = ChatEngine()
    try:
        engine.load(path, context_length=512)
        assert engine.chat_format.source == "fallback"
        assert engine.chat_format.family == "chatml"  # its vocabulary has the ChatML markers
        assert "chat template is broken" in engine.chat_format.description
        result = engine.generate(HELLO, SamplingSettings(seed=1, max_tokens=8))
        assert result.timings.generated_tokens > 0
    finally:
        engine.unload()


def test_multibyte_characters_split_over_byte_tokens_are_never_broken(engine: ChatEngine) -> None:
    import codecs

    tokens = engine._tokenize("é✓", add_bos=False)
    pieces = [engine._piece(t) for t in tokens]
    assert all(len(p) == 1 for p in pieces)  # the tiny vocab spells them byte by byte
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    shown = [decoder.decode(p) for p in pieces]
    assert [s for s in shown if s.strip()] == ["é", "✓"]  # after SPM's leading space


def test_stop_string_helpers() -> None:
    stops = ("<|im_end|>", "\nUser:")
    assert _find_stop("Paris.<|im_end|>junk", stops) == 6
    assert _find_stop("no stop here", stops) is None
    assert _held_back("Paris.<|im", stops) == 4
    assert _held_back("Paris.\nUs", stops) == 3
    assert _held_back("Paris.", stops) == 0


@pytest.mark.integration
def test_gemma_starter_answers_a_simple_question(gemma_model: Path) -> None:
    engine = ChatEngine()
    try:
        engine.load(gemma_model, n_threads=2)
        pieces: list[str] = []
        result = engine.generate(
            [{"role": "user", "content": "What is the capital of France?"}],
            SamplingSettings(temperature=0.0, max_tokens=40),
            on_token=pieces.append,
        )
        assert "Paris" in result.text
        assert result.timings.finish_reason == "stop"
        shown = "".join(pieces)
        for marker in [*engine.chat_format.stop_strings, "User:", "<end_of_turn>", "<eos>"]:
            assert marker not in shown
    finally:
        engine.unload()


@pytest.mark.integration
def test_gemma_follow_up_turns_reuse_the_prompt_and_never_show_markers(
    gemma_model: Path,
) -> None:
    engine = ChatEngine()
    try:
        engine.load(gemma_model, n_threads=2, chat_format="gemma")
        assert engine.chat_format.family == "gemma"
        messages: list[dict[str, Any]] = []
        results = []
        for question in ("Name a fruit.", "Name a colour.", "Name an animal."):
            messages.append({"role": "user", "content": question})
            result = engine.generate(messages, SamplingSettings(seed=11, max_tokens=30))
            results.append(result)
            for marker in ("<end_of_turn>", "<start_of_turn>", "<eos>", "<bos>"):
                assert marker not in result.text
            messages.append({"role": "assistant", "content": result.text})
        last = results[-1].timings
        assert last.reused_tokens > 0
        assert last.evaluated_tokens < last.prompt_tokens / 2
    finally:
        engine.unload()
