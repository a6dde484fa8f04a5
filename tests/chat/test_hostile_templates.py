"""Hostile chat templates (read from a model file) are refused within time and memory bounds.

Each template in tests/chat/templates/hostile would run for hours or allocate gigabytes, some
while being compiled. They run in a child process (tests/chat/hostile_render.py) with an address
space limit and a timeout, so a regression fails the test instead of exhausting the machine; the
child measures time, tracemalloc's peak and the growth of peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slmdesk.models.chat_format import ChatFormat
from slmdesk.models.template_sandbox import MAX_TEMPLATE_CHARS

HERE = Path(__file__).parent
HOSTILE = sorted((HERE / "templates" / "hostile").glob("*.jinja"))
# The bounds the app promises for any template: refused within 2 s and 100 MB. The 2 s are
# checked on processor time, which is wall-clock time on an idle machine; on a shared, loaded
# test machine the wall clock only gets a generous bound that still catches a hang.
MAX_SECONDS = 2.0
MAX_WALL_SECONDS = 10.0
MAX_BYTES = 100 * 1024 * 1024
CHILD_TIMEOUT = 120.0
LONG_CHAT = [{"role": "system", "content": "Be brief."}] + [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}: " + "word " * 100}
    for i in range(200)
]


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """Run every hostile template once in a child; its report per template name."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parents[1]), OPENBLAS_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, str(HERE / "hostile_render.py"), *map(str, HOSTILE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        out, _err = child.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _err = child.communicate()
    found = {}
    for line in out.splitlines():
        report = json.loads(line)
        found[report["name"]] = report
    return found


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_hostile_template_is_refused_quickly_and_cheaply(
    path: Path, reports: dict[str, dict[str, Any]]
) -> None:
    report = reports.get(path.stem)
    assert report is not None, f"{path.stem} did not finish (child stopped or crashed)"
    assert report["source"] == "fallback"
    assert report["description"].startswith(
        "ChatML format (fallback: the model's chat template was refused: it "
    ), report["description"]
    assert report["cpu_seconds"] < MAX_SECONDS, report
    assert report["seconds"] < MAX_WALL_SECONDS, report
    assert report["peak_bytes"] < MAX_BYTES, report
    assert report["rss_growth_bytes"] < MAX_BYTES, report


def test_a_refused_template_is_not_run_again(template: Callable[[str], str]) -> None:
    fmt = ChatFormat(template("hostile/quartic_in_messages"), architecture="gemma3")
    assert fmt.source == "template"  # harmless on the two-message probe
    fmt.render(LONG_CHAT)
    assert fmt.source == "fallback" and fmt.family == "gemma"
    assert "was refused: it ran longer than 1 s" in fmt.description
    # Short conversations now get the fallback too: the template never runs again.
    assert fmt.render(LONG_CHAT[:2]).endswith("<start_of_turn>model\n")


def test_an_overlong_template_is_refused_before_compiling() -> None:
    text = "{{ messages[0]['content'] }}" + " " * MAX_TEMPLATE_CHARS
    fmt = ChatFormat(text, architecture="qwen2")
    assert fmt.source == "fallback"
    assert "was refused: it is 32,796 characters long (at most 32,768 are" in fmt.description


@pytest.mark.parametrize(
    "unit", ["~m.content", "{{ m.content }}", "{% if m %}{{ m|trim }}{% endif %}"]
)
def test_the_densest_template_of_the_longest_accepted_size_compiles_in_time(unit: str) -> None:
    head = "{% for m in messages %}{{ m.content"
    if unit.startswith("~"):
        body = unit * ((MAX_TEMPLATE_CHARS - 60) // len(unit)) + " }}"
    else:
        body = " }}" + unit * ((MAX_TEMPLATE_CHARS - 60) // len(unit))
    text = head + body + "{% endfor %}"
    assert len(text) <= MAX_TEMPLATE_CHARS
    started = time.process_time()
    fmt = ChatFormat(text, architecture="qwen2")
    fmt.render(LONG_CHAT[:3])
    # Processor time (a loaded test machine stretches the wall clock): compile, probe, render.
    assert time.process_time() - started < MAX_SECONDS


@pytest.mark.parametrize(
    "name",
    ["qwen3_thinking", "llama32_dated_tools", "gemma3", "mistral_v03_system_last", "deepseek_r1"],
)
def test_real_templates_stay_within_the_limits_on_a_long_chat(
    name: str, template: Callable[[str], str]
) -> None:
    fmt = ChatFormat(template(name), architecture="llama", bos_token="<s>", eos_token="</s>")
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    prompt = fmt.render(LONG_CHAT, tools=[tool])
    assert fmt.source == "template", fmt.description
    assert all(m["content"].strip() in prompt for m in LONG_CHAT if m["role"] == "user")


def test_a_very_long_message_is_not_mistaken_for_a_bomb(template: Callable[[str], str]) -> None:
    # 4 MB of pasted text: the byte budget grows with what the template is given.
    huge = [{"role": "user", "content": "lorem ipsum " * 350_000}]
    fmt = ChatFormat(template("qwen25_chatml_tools"), architecture="qwen2")
    assert fmt.render(huge).endswith("<|im_start|>assistant\n")
    assert fmt.source == "template", fmt.description


def test_template_features_still_work_in_the_bounded_sandbox() -> None:
    text = (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
        "{{ loop.index }}/{{ loop.length }}{{ '<' ~ m.role ~ '>' }}{{ m['content']|trim }}"
        "{{ '%s!' % m.role }}{{ '{}.'.format(m.role) }}{% endfor %}"
        "{{ ns.n * 2 }} {{ [1, 2] * 2 }} {{ 2 ** 10 }} {{ messages|map(attribute='role')|join(',') }}"
        " {{ messages[-1:]|tojson }} {{ 'ab'|center(6) }}|{{ 'a b'.split()|length }}"
    )
    fmt = ChatFormat(text, architecture="qwen2")
    prompt = fmt.render(
        [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo"}]
    )
    assert fmt.source == "template", fmt.description
    assert prompt == (
        "1/2<user>hiuser!user.2/2<assistant>yoassistant!assistant."
        '4 [1, 2, 1, 2] 1024 user,assistant [{"role": "assistant", "content": "yo"}]   ab  |2'
    )
