"""`slmdesk serve` as a user runs it: a real process, its exit codes and what it prints."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from slmdesk.models.library import Library
from tests.cli.clirun import assert_clean_failure, run_cli
from tests.serve.conftest import API_KEY, TINY

openai = pytest.importorskip("openai")


def test_another_interface_without_a_key_is_refused_with_exit_2() -> None:
    out = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--api-key" in lines[0] and "0.0.0.0" in lines[0]


def test_an_unknown_model_is_a_clean_error() -> None:
    out = run_cli("serve", "--model", "nope", "--port", "0")
    assert "nope" in assert_clean_failure(out)


def test_a_port_in_use_is_a_clean_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = run_cli("serve", "--port", str(port))
    assert "already in use" in assert_clean_failure(out)


def test_serve_process_answers_warns_when_exposed_and_never_shows_the_key(
    library: Library, slmdesk_home: Path
) -> None:
    assert library.get(TINY)
    env = dict(os.environ, SLMDESK_API_KEY=API_KEY)
    command = ["serve", "--model", TINY, "--host", "0.0.0.0", "--port", "0", "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "slmdesk", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        facts = json.loads(process.stdout.readline())
        assert facts["model"] == TINY and facts["api_key_required"] is True
        url = f"http://127.0.0.1:{facts['port']}/v1"
        with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as client:
            reply = client.chat.completions.create(
                model=TINY, messages=[{"role": "user", "content": "hi"}], max_tokens=3
            )
            assert reply.choices[0].message.content is not None
        wrong = openai.OpenAI(base_url=url, api_key="wrong", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "WARNING" in stderr and "0.0.0.0" in stderr
    logs = "".join(p.read_text(errors="replace") for p in slmdesk_home.rglob("*.log"))
    assert API_KEY not in stdout + stderr + logs
