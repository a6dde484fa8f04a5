"""Chat templates: real published template structures rendered in the sandbox, repairs, fallbacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slmdesk.models.chat_format import ChatFormat, looks_instruction_tuned, normalize_messages
from slmdesk.models.gguf_info import read_gguf_info

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]

# template -> (end of the rendered prompt, end-of-turn marker among the stop strings)
REAL_TEMPLATES = {
    "qwen25_chatml_tools": ("<|im_start|>assistant\n", "<|im_end|>"),
    "qwen3_thinking": ("<|im_start|>assistant\n", "<|im_end|>"),
    "smollm2": ("<|im_start|>assistant\n", "<|im_end|>"),
    "llama3": ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    "llama32_dated_tools": ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
    "gemma2": ("<start_of_turn>model\n", "<end_of_turn>"),
    "gemma3": ("<start_of_turn>model\n", "<end_of_turn>"),
    "mistral_v01": ("What is 2+2? [/INST]", "</s>"),
    "mistral_v03_system_last": ("What is 2+2?[/INST]", "</s>"),
    "llama2_sys": ("What is 2+2? [/INST]", "</s>"),
    "phi3": ("<|assistant|>\n", "<|end|>"),
    "deepseek_r1": ("<｜Assistant｜><think>\n", "<｜end▁of▁sentence｜>"),
    "zephyr": ("<|assistant|>\n", "</s>"),
    "generation_tag": ("<|im_start|>assistant\n", "<|im_end|>"),
}


def _format(text: str) -> ChatFormat:
    return ChatFormat(text, architecture="llama", bos_token="<s>", eos_token="</s>")


@pytest.mark.parametrize("name", sorted(REAL_TEMPLATES))
def test_real_templates_render_a_normal_conversation(
    name: str, template: Callable[[str], str]
) -> None:
    fmt = _format(template(name))
    prompt = fmt.render(CONVERSATION)
    ending, marker = REAL_TEMPLATES[name]
    assert fmt.source == "template", fmt.description
    assert fmt.description == "the model's own chat template"
    assert prompt.endswith(ending)
    for message in CONVERSATION:
        assert message["content"] in prompt
    assert marker in fmt.stop_strings
    # Turns keep their order.
    assert prompt.index("Hello there") < prompt.index("Hi! How can I help?")
    assert prompt.index("Hi! How can I help?") < prompt.index("What is 2+2?")


@pytest.mark.parametrize("name", ["gemma2", "mistral_v01"])
def test_templates_refusing_a_system_role_get_it_folded_into_the_first_turn(
    name: str, template: Callable[[str], str]
) -> None:
    fmt = _format(template(name))
    prompt = fmt.render(CONVERSATION)
    assert fmt.source == "template"
    assert fmt.note == "system prompt folded into the first message"
    assert "Be brief.\n\nHello there" in prompt
    # Without a system prompt nothing needs folding.
    fmt.render(CONVERSATION[1:])
    assert fmt.note is None


def test_strict_alternation_templates_get_consecutive_turns_merged(
    template: Callable[[str], str],
) -> None:
    fmt = _format(template("gemma3"))
    messages = [
        {"role": "user", "content": "First part."},
        {"role": "user", "content": "Second part."},
        {"role": "assistant", "content": "Answer."},
        {"role": "assistant", "content": "More answer."},
        {"role": "user", "content": "Next?"},
    ]
    prompt = fmt.render(messages)
    assert fmt.source == "template"
    assert prompt.count("<start_of_turn>user") == 2
    assert "First part.\n\nSecond part." in prompt


def test_gemma3_template_folds_the_system_prompt_itself(template: Callable[[str], str]) -> None:
    fmt = ChatFormat(template("gemma3"), architecture="gemma3", bos_token="<bos>")
    prompt = fmt.render(CONVERSATION)
    assert prompt.startswith("<bos><start_of_turn>user\nBe brief.\n\nHello there<end_of_turn>\n")
    assert fmt.note is None


def test_template_variables_tools_date_and_thinking(template: Callable[[str], str]) -> None:
    dated = _format(template("llama32_dated_tools")).render(CONVERSATION)
    assert "Today Date: " in dated and "Cutting Knowledge Date" in dated
    assert "Environment: ipython" not in dated  # tools default to none
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    with_tools = _format(template("qwen25_chatml_tools")).render(CONVERSATION, tools=[tool])
    assert '"name": "get_weather"' in with_tools
    qwen3 = _format(template("qwen3_thinking"))
    assert "<think>" not in qwen3.render(CONVERSATION)
    assert qwen3.render(CONVERSATION, enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_default_system_prompt_of_a_template_is_kept(template: Callable[[str], str]) -> None:
    prompt = _format(template("smollm2")).render(CONVERSATION[1:])
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_bos_token_comes_from_the_caller(template: Callable[[str], str]) -> None:
    fmt = ChatFormat(template("llama3"), bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    assert fmt.render(CONVERSATION).startswith("<|begin_of_text|><|start_header_id|>system")


def test_rendering_is_prefix_stable_for_follow_up_turns(template: Callable[[str], str]) -> None:
    # Prompt-prefix reuse relies on turn N's prompt extending turn N-1's prompt plus reply.
    for name in ("qwen25_chatml_tools", "llama3", "gemma3", "phi3"):
        fmt = _format(template(name))
        first = fmt.render(CONVERSATION[:2])
        full = fmt.render(CONVERSATION)
        assert full.startswith(first), name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken_syntax", "chat template is broken"),
        ("always_raises", "This template refuses every conversation"),
        ("sandbox_escape", "SecurityError"),
        ("mutates_messages", "SecurityError"),
    ],
)
def test_templates_that_fail_fall_back_and_say_why(
    name: str, reason: str, template: Callable[[str], str]
) -> None:
    fmt = ChatFormat(template(name), architecture="qwen2", bos_token="", eos_token="<|endoftext|>")
    prompt = fmt.render(CONVERSATION)
    assert fmt.source == "fallback"
    assert fmt.family == "chatml"
    assert fmt.description.startswith("ChatML format (fallback: ")
    assert reason in fmt.description
    assert prompt.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert "<|im_end|>" in fmt.stop_strings
    assert "__subclasses__" not in prompt and "injected" not in prompt


def test_sandbox_blocks_python_internals_and_files() -> None:
    for evil in (
        "{{ ''.__class__.__mro__ }}{{ messages[0]['content'] }}",
        "{{ cycler.__init__.__globals__.os.listdir('/') }}{{ messages[0]['content'] }}",
        "{% include '/etc/passwd' %}{{ messages[0]['content'] }}",
    ):
        fmt = ChatFormat(evil, architecture="gemma3", bos_token="<bos>")
        prompt = fmt.render([{"role": "user", "content": "hi"}])
        assert fmt.source == "fallback", evil
        assert "root:" not in prompt and "<class" not in prompt


@pytest.mark.parametrize(
    ("arch", "tokenizer", "family", "start", "stop"),
    [
        ("gemma3", "llama", "gemma", "<start_of_turn>user\n", "<end_of_turn>"),
        ("gemma2", "llama", "gemma", "<start_of_turn>user\n", "<end_of_turn>"),
        ("gemma", "llama", "gemma", "<start_of_turn>user\n", "<end_of_turn>"),
        ("qwen2", "gpt2", "chatml", "<|im_start|>system\n", "<|im_end|>"),
        ("phi3", "llama", "phi3", "<|system|>\n", "<|end|>"),
        ("llama", "gpt2", "llama3", "<|start_header_id|>system", "<|eot_id|>"),
        ("llama", "llama", "mistral", "[INST] ", "[INST]"),
        ("rwkv7", "rwkv", "plain", "Be brief.\n\nUser: Hello there\n", "\nUser:"),
    ],
)
def test_models_without_a_template_fall_back_by_architecture(
    arch: str, tokenizer: str, family: str, start: str, stop: str
) -> None:
    fmt = ChatFormat(None, architecture=arch, tokenizer_model=tokenizer, bos_token="")
    prompt = fmt.render(CONVERSATION)
    assert fmt.family == family
    assert fmt.source == ("plain" if family == "plain" else "fallback")
    assert "the model has no chat template" in fmt.description
    assert prompt.startswith(start)
    assert stop in fmt.stop_strings
    for message in CONVERSATION:
        assert message["content"] in prompt


def test_gemma_fallback_writes_gemma_turns() -> None:
    fmt = ChatFormat(None, architecture="gemma3", bos_token="<bos>", eos_token="<eos>")
    assert fmt.description == "Gemma format (fallback: the model has no chat template)"
    assert fmt.render(CONVERSATION) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHello there<end_of_turn>\n"
        "<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert fmt.stop_strings == ("<end_of_turn>", "<start_of_turn>", "<eos>")


def test_vocabulary_probe_picks_the_format_the_tokens_were_made_for() -> None:
    known = {"<|im_start|>", "<|im_end|>"}
    fmt = ChatFormat(None, architecture="llama", is_special_token=known.__contains__)
    assert fmt.family == "chatml"


def test_the_plain_transcript_when_chosen_for_a_base_model() -> None:
    fmt = ChatFormat(
        None, architecture="gemma3", bos_token="<bos>", base_model=True, fallback="plain"
    )
    assert fmt.source == "plain" and fmt.base_model
    assert fmt.render(CONVERSATION) == (
        "<bos>Be brief.\n\nUser: Hello there\nAssistant: Hi! How can I help?\n"
        "User: What is 2+2?\nAssistant:"
    )


def test_a_forced_family_overrides_the_template(template: Callable[[str], str]) -> None:
    fmt = ChatFormat(template("llama3"), architecture="llama", fallback="chatml")
    assert fmt.family == "chatml" and "chosen in the settings" in fmt.description
    with pytest.raises(ValueError):
        ChatFormat(None, fallback="nonsense")


def test_from_info_on_real_files(tiny_model: Path, tiny_model_no_template: Path) -> None:
    with_template = ChatFormat.from_info(read_gguf_info(tiny_model), bos_token="<s>")
    assert with_template.source == "template"
    assert with_template.render(CONVERSATION[1:2]) == (
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    )
    base_info = read_gguf_info(tiny_model_no_template)
    assert not looks_instruction_tuned(base_info)
    assert ChatFormat.from_info(base_info).family == "qa"  # the base models' hidden Q&A frame


@pytest.mark.integration
def test_from_info_on_the_gemma_starter(gemma_model: Path) -> None:
    info = read_gguf_info(gemma_model)
    assert not looks_instruction_tuned(info)  # Gemma 3 270M pretrained: a base model
    fmt = ChatFormat.from_info(info)
    assert fmt.family == "qa" and fmt.base_model
    assert ChatFormat.from_info(info, fallback="gemma").family == "gemma"


def test_normalize_messages_shapes() -> None:
    messages = [
        {"role": "assistant", "content": "Greeting before anyone spoke."},
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": "A"},
        {"role": "user", "content": "B"},
        {"role": "assistant", "content": [{"type": "text", "text": "C"}]},
    ]
    assert normalize_messages(messages, fold_system=False) == [
        {"role": "system", "content": "Sys."},
        {"role": "user", "content": "A\n\nB"},
        {"role": "assistant", "content": "C"},
    ]
    assert normalize_messages(messages, fold_system=True)[0] == {
        "role": "user",
        "content": "Sys.\n\nA\n\nB",
    }
