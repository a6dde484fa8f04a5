"""Odd command-line values get a clear message, never an "unexpected problem" or a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import MAX_ERROR_LINE, assert_clean_failure, assert_no_noise, has_control, run_cli

from slmdesk.cli.output import one_line
from slmdesk.cli.validate import check_model_name, max_threads
from slmdesk.common.errors import SlmdeskError

LONG = "A" * 5000


def assert_usage_error(out: object, *words: str) -> None:
    """Exit 2 (bad usage), argparse's usage line, then one short printable error line."""
    assert out.returncode == 2, (out.returncode, out.stderr)  # type: ignore[attr-defined]
    stderr: str = out.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert "error: argument" in last, stderr
    assert len(last) <= MAX_ERROR_LINE and not has_control(last), repr(last)
    for word in words:
        assert word in last, (word, last)


@pytest.mark.parametrize(
    "args",
    [
        ("inspect", LONG),
        ("chat", LONG, "--prompt", "hi"),
        ("models", "remove", LONG),
        ("models", "import", LONG),
        ("eval", LONG, "--reference", LONG),
        ("optimize", LONG, "--quant", "Q8_0"),
    ],
    ids=["inspect", "chat", "remove", "import", "eval", "optimize"],
)
def test_a_5000_character_model_name_is_a_clear_error(args: tuple[str, ...]) -> None:
    out = run_cli(*args)
    assert_no_noise(out)
    line = assert_clean_failure(out)
    assert "too long" in line and "5,000 characters" in line
    assert LONG not in out.stderr


@pytest.mark.parametrize("args", [("files", LONG), ("pull", "a/" + LONG), ("files", "a/b\nc")])
def test_an_impossible_repository_name_is_a_clear_error(args: tuple[str, ...]) -> None:
    out = run_cli(*args)
    assert_no_noise(out)
    assert_clean_failure(out, "is not a Hub repository name")
    assert LONG not in out.stderr


@pytest.mark.parametrize(
    "name",
    ["x" * 300, "two\nlines", "tab\there", "esc\x1b[31mred", "a/b", "..\\evil", ".hidden", "  "],
    ids=["300-chars", "newline", "tab", "escape", "slash", "backslash", "dot", "blank"],
)
def test_unusable_names_are_refused(tiny_model: Path, slmdesk_home: Path, name: str) -> None:
    out = run_cli("models", "import", str(tiny_model), "--name", name)
    assert_no_noise(out)
    assert_clean_failure(out, "--name")
    assert json.loads(run_cli("models", "list", "--json").stdout)["models"] == []

    out = run_cli("optimize", str(tiny_model), "--quant", "Q8_0", "--no-eval", "--name", name)
    assert_no_noise(out)
    assert_clean_failure(out, "--name")
    leftovers = [p.name for p in (slmdesk_home / "models").iterdir()]
    assert leftovers == [], leftovers


def test_a_reasonable_name_still_works(tiny_model: Path) -> None:
    out = run_cli(
        "models", "import", str(tiny_model), "--link", "--name", " My model (v2) ", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "My model (v2)"


@pytest.mark.parametrize(
    "endpoint",
    ["not a url", "http://[::1", "ftp://example.org", "http://:80", "https://host:99999", "x\ny"],
    ids=["words", "bad-ipv6", "ftp", "no-host", "bad-port", "newline"],
)
def test_a_malformed_hf_endpoint_is_a_clear_error(endpoint: str) -> None:
    env = dict(os.environ, HF_ENDPOINT=endpoint)
    env.pop("HF_HUB_OFFLINE", None)
    for args in (("search", "tiny"), ("files", "owner/repo"), ("pull", "owner/repo")):
        out = run_cli(*args, env=env)
        assert_no_noise(out)
        assert_clean_failure(out, "HF_ENDPOINT")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("chat", "m", "--threads", "100000"), ("--threads", "from 1 to")),
        (("chat", "m", "--threads", "0"), ("--threads", "from 1 to")),
        (("chat", "m", "--ctx", "0"), ("--ctx",)),
        (("chat", "m", "--ctx", "-1"), ("--ctx",)),
        (("chat", "m", "--ctx", "99999999999"), ("--ctx",)),
        (("chat", "m", "--max-tokens", "0"), ("--max-tokens",)),
        (("chat", "m", "--max-tokens", "-5"), ("--max-tokens",)),
        (("chat", "m", "--seed", str(1 << 40)), ("--seed",)),
        (("inspect", "m", "--ctx", "-1"), ("--ctx",)),
        (("inspect", "m", "--ctx", "lots"), ("--ctx", "whole number")),
        (("optimize", "m", "--quant", "Q8_0", "--threads", "100000"), ("--threads",)),
        (("optimize", "m", "--quant", "Q8_0", "--prune", "0"), ("--prune",)),
        (("eval", "m", "--reference", "r", "--threads", "-1"), ("--threads",)),
        (("search", "q", "--limit", "0"), ("--limit",)),
        (("inspect", "m", "--ctx", "9" * 5000), ("--ctx", "5,000-character")),
        (("search", "q", "--sort", LONG), ("--sort", "invalid choice")),
        (("search", "q", "--sort", "likes\x1b[2J"), ("--sort", "invalid choice")),
    ],
)
def test_out_of_range_numbers_are_usage_errors(args: tuple[str, ...], words: tuple[str]) -> None:
    assert_usage_error(run_cli(*args), *words)


def test_unrecognised_long_arguments_give_a_short_line() -> None:
    out = run_cli("models", "list", LONG)
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert "unrecognized arguments" in last and len(last) <= MAX_ERROR_LINE, len(last)


def test_a_closed_pipe_is_not_an_error(tiny_model: Path) -> None:
    """``slmdesk models list --json | head -0``: no "Exception ignored ... BrokenPipeError"."""
    assert run_cli("models", "import", str(tiny_model), "--link").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "slmdesk", "models", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the command prints
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    assert stderr == "", stderr


def test_threads_bound_follows_this_computer() -> None:
    out = run_cli("chat", "m", "--threads", str(max_threads() + 1))
    assert_usage_error(out, f"from 1 to {max_threads():,}")


def test_inspect_accepts_a_positive_ctx(tiny_model: Path) -> None:
    out = run_cli("inspect", str(tiny_model), "--ctx", "256", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["memory"]["context_length"] == 256


def test_chat_runs_with_checked_numbers(tiny_model: Path) -> None:
    out = run_cli(
        "chat", str(tiny_model), "--prompt", "hi", "--max-tokens", "3", "--threads", "1",
        "--ctx", "256", "--seed", "7", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["timings"]["generated_tokens"] <= 3


def test_check_model_name_keeps_ordinary_names() -> None:
    for name in ("gemma-3-270m-Q4_K_M", "Llama 3.2 1B (pruned 2)", "модель-Q8_0", "x" * 120):
        assert check_model_name(name) == name
    for name in ("é" * 101, "x" * 121):  # 202 bytes of UTF-8; 121 characters
        with pytest.raises(SlmdeskError, match="too long"):
            check_model_name(name)
    with pytest.raises(SlmdeskError, match="not UTF-8"):
        check_model_name(os.fsdecode(b"caf\xe9"))  # a Latin-1 name from a UTF-8 terminal


def test_one_line_makes_any_message_printable_and_short() -> None:
    assert one_line("plain sentence.") == "plain sentence."
    assert one_line("a\nb\r\nc\td\x1b[31m e\u202e") == "a b c d [31m e"
    long = one_line("start " + "x" * 5000 + " end")
    assert len(long) == 300
    assert long.startswith("start ") and long.endswith(" end") and "..." in long
