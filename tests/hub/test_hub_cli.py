"""``slmdesk search|files|pull`` in real subprocesses against the local Hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hubserver import TINY_REPO, LocalHub, closed_port_url, sha256_of


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_search_json(hub_env: dict[str, str]) -> None:
    proc = _run(hub_env, "search", "GGUF", "--sort", "likes", "--limit", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    results = data["results"]
    assert len(results) == 3
    assert results[0]["repo_id"] == "slmtest/liked-GGUF"
    assert set(results[0]) >= {
        "repo_id",
        "author",
        "downloads",
        "likes",
        "last_modified",
        "license",
        "gated",
    }


def test_search_text(hub_env: dict[str, str]) -> None:
    proc = _run(hub_env, "search", "tiny")
    assert proc.returncode == 0, proc.stderr
    assert TINY_REPO in proc.stdout and "DOWNLOADS" in proc.stdout


def test_files_json_and_text(hub_env: dict[str, str], tiny_model_source: Path) -> None:
    proc = _run(hub_env, "files", TINY_REPO, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    files = {f["name"]: f for f in data["files"]}
    f16 = files["tiny-llama-F16.gguf"]
    assert f16["quantization"] == "F16"
    assert f16["size_bytes"] == tiny_model_source.stat().st_size
    assert f16["sha256"] == sha256_of(tiny_model_source)
    assert f16["verdict"] in ("fits", "tight", "too big")
    assert sum(f["recommended"] for f in data["files"]) == 1
    assert data["recommended"] == "tiny-llama-Q8_0.gguf"
    text = _run(hub_env, "files", TINY_REPO)
    assert text.returncode == 0
    assert "* tiny-llama-Q8_0.gguf" in text.stdout and "recommended" in text.stdout


def test_user_errors_are_one_line(hub_env: dict[str, str]) -> None:
    cases = [
        (["files", "slmtest/nothing-here"], "not found"),
        (["files", "slmtest/safetensors-only"], "no GGUF files"),
        (["pull", "slmtest/gated-GGUF"], "gated"),
        (["pull", TINY_REPO, "--quant", "Q2_K"], "no Q2_K file"),
    ]
    for args, words in cases:
        proc = _run(hub_env, *args)
        assert proc.returncode == 1, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and words in lines[-1], proc.stderr
        assert "Traceback" not in proc.stderr
    offline = dict(hub_env, HF_ENDPOINT=closed_port_url())
    for args in (["search", "x"], ["files", TINY_REPO], ["pull", TINY_REPO]):
        proc = _run(offline, *args)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: You are offline"), proc.stderr


def test_pull_json_then_listed(hub_env: dict[str, str], tiny_model_source: Path) -> None:
    proc = _run(hub_env, "pull", TINY_REPO, "--quant", "F16", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["state"] == "done"
    assert data["sha256"] == sha256_of(tiny_model_source)
    assert sha256_of(Path(data["path"])) == data["sha256"]
    listed = json.loads(_run(hub_env, "models", "list", "--json").stdout)
    names = [m["name"] for m in listed["models"]]
    assert names == ["tiny-llama-F16"]
    assert listed["models"][0]["provenance"]["source"] == "hub"
    again = _run(hub_env, "pull", TINY_REPO, "--quant", "F16")
    assert again.returncode == 0 and "tiny-llama-F16" in again.stdout


def test_killed_pull_resumes_on_rerun(
    hub_env: dict[str, str], local_hub: LocalHub, slmdesk_home: Path, tiny_model_source: Path
) -> None:
    size = tiny_model_source.stat().st_size
    local_hub.faults.delay = 0.03
    local_hub.faults.chunk = 64 * 1024
    partial = slmdesk_home / "models" / "tiny-llama-F16.gguf.incomplete"
    proc = subprocess.Popen(
        [sys.executable, "-m", "slmdesk", "pull", TINY_REPO, "--file", "tiny-llama-F16.gguf"],
        env=hub_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size > 1_000_000:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the download never got going")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = partial.stat().st_size
    assert 1_000_000 < kept < size
    assert not (slmdesk_home / "models" / "tiny-llama-F16.gguf").exists()

    local_hub.faults.delay = 0
    local_hub.reset_log()
    rerun = _run(hub_env, "pull", TINY_REPO, "--file", "tiny-llama-F16.gguf", "--json")
    assert rerun.returncode == 0, rerun.stderr
    gets = local_hub.cdn_requests()
    assert [r.range for r in gets] == [f"bytes={kept}-"]
    assert local_hub.bytes_served() == size - kept
    final = Path(json.loads(rerun.stdout)["path"])
    assert sha256_of(final) == sha256_of(tiny_model_source)
    assert not partial.exists()
