"""``slmdesk chat --endpoint`` and ``slmdesk connections`` as real subprocesses, against
llama-cpp-python's own server and a second ``slmdesk serve`` on the tiny model."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.clirun import assert_clean_failure, assert_no_noise, run_cli
from tests.remote_servers import (
    API_KEY,
    RunningServer,
    free_port,
)


def test_one_reply_as_json_from_llama_server(llama_server: RunningServer) -> None:
    out = run_cli(
        "chat", "--endpoint", llama_server.url, "--model", llama_server.model,
        "--prompt", "hello", "--max-tokens", "6", "--seed", "1", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"reply", "timings", "format", "mode"} <= set(data)
    assert data["remote"] is True and data["endpoint"] == f"{llama_server.url}/v1"
    assert data["mode"] == "chat" and data["format"]["source"] == "server"
    assert data["load"] == {"context_length": None, "n_threads": None}
    assert data["system_prompt"] == ""
    assert 1 <= data["timings"]["generated_tokens"] <= 6
    assert data["timings"]["finish_reason"] in ("stop", "length")
    assert_no_noise(out)


def test_streamed_reply_with_a_key_from_the_environment(slmdesk_server: RunningServer) -> None:
    env = {**os.environ, "SLMDESK_REMOTE_API_KEY": API_KEY}
    out = run_cli(
        "chat", "--endpoint", f"{slmdesk_server.url}/v1/", "--model", "tiny", "--prompt", "hi",
        "--max-tokens", "5", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "tokens/s" in out.stderr and "server:" in out.stderr
    assert API_KEY not in out.stdout + out.stderr
    assert_no_noise(out)


def test_interactive_remote_chat(llama_server: RunningServer) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "slmdesk", "chat", "--endpoint", llama_server.url,
         "--model", llama_server.model, "--max-tokens", "4"],
        input="hello\nagain\n/exit\n", capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("tokens/s") == 2
    assert_no_noise(out)


def test_an_unreachable_server_is_exit_1_with_a_sentence() -> None:
    port = free_port()
    out = run_cli(
        "chat", "--endpoint", f"http://127.0.0.1:{port}", "--model", "m", "--prompt", "hi"
    )
    line = assert_clean_failure(out, "Cannot reach", "connection refused")
    assert line == f"error: Cannot reach 127.0.0.1:{port}: connection refused."


def test_a_wrong_key_is_exit_1_with_a_sentence(slmdesk_server: RunningServer) -> None:
    out = run_cli(
        "chat", "--endpoint", slmdesk_server.url, "--api-key", "sk-nope", "--model", "tiny",
        "--prompt", "hi",
    )  # fmt: skip
    assert_clean_failure(out, "refused the API key (HTTP 401)")
    assert "sk-nope" not in out.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--endpoint", "ftp://x", "--model", "m", "--prompt", "hi"], "must start with http"),
        (["--endpoint", "http://127.0.0.1:9", "--prompt", "hi"], "Name the server's model"),
        (["--model", "m", "--prompt", "hi"], "give --endpoint URL or --connection"),
        (["--endpoint", "http://x", "--model", "m", "--ctx", "512"], "--ctx applies to local"),
        (["--connection", "nope", "--model", "m", "--prompt", "hi"], "No connection is called"),
    ],
)
def test_bad_remote_arguments_are_one_line(args: list[str], words: str) -> None:
    assert_clean_failure(run_cli("chat", *args), words)


def test_a_local_chat_still_needs_its_model() -> None:
    out = run_cli("chat", "--prompt", "hi")
    assert out.returncode == 2 and "required: model" in out.stderr


def test_connections_add_list_chat_and_remove(slmdesk_server: RunningServer) -> None:
    out = run_cli("connections", "add", "box", slmdesk_server.url, "--api-key", API_KEY, "--test")
    assert out.returncode == 0, out.stderr
    assert "lists 1 model(s)" in out.stdout
    listed = run_cli("connections", "list", "--json")
    assert json.loads(listed.stdout) == [
        {"name": "box", "base_url": slmdesk_server.url, "has_key": True}
    ]
    assert API_KEY not in run_cli("connections", "list").stdout
    assert json.loads(run_cli("connections", "models", "box", "--json").stdout) == ["tiny"]
    out = run_cli(
        "chat", "--connection", "box", "--model", "tiny", "--prompt", "hi", "--max-tokens", "3",
        "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["remote"] is True
    assert_clean_failure(run_cli("connections", "add", "box", "http://x"), "exists already")
    assert run_cli("connections", "remove", "box").returncode == 0
    assert json.loads(run_cli("connections", "list", "--json").stdout) == []
