"""Fixtures for Hub tests: a local Hub serving real GGUF files, and the client pointed at it.

The shared conftest turns on ``HF_HUB_OFFLINE`` for every test so none can reach the real Hub.
Here it is turned off again, in the environment and in ``huggingface_hub.constants`` (read at
import), and ``HF_ENDPOINT`` points at the local Hub. ``HF_TOKEN`` is removed so the tests never
depend on a token the machine may have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ui"))

from gui_guard import gui_guard, pytest_runtest_call
from hubserver import TINY_REPO, HubFile, LocalHub

# The Discover page tests are GUI tests: the GUI-thread guard applies to them too.
__all__ = ["gui_guard", "pytest_runtest_call"]


def populate(hub: LocalHub, tiny: Path, workdir: Path) -> None:
    """The repositories every Hub test can use."""
    workdir.mkdir(parents=True, exist_ok=True)
    padded = workdir / "tiny-llama-Q8_0.gguf"
    if not padded.exists():
        # A second real GGUF file with different bytes: trailing padding is ignored by readers.
        padded.write_bytes(tiny.read_bytes() + bytes(range(256)) * 16)
    card = b"---\nlicense: apache-2.0\n---\n# Tiny Llama GGUF\n\nA tiny test model.\n"

    repo = hub.add_repo(
        TINY_REPO, downloads=5000, likes=12, last_modified="2025-03-01T10:00:00.000Z"
    )
    repo.add(HubFile.lfs("tiny-llama-F16.gguf", tiny))
    repo.add(HubFile.lfs("tiny-llama-Q8_0.gguf", padded))
    repo.add(HubFile.small("README.md", card))
    repo.add(HubFile.small("config.json", b"{}"))

    hub.add_repo(
        "slmtest/popular-GGUF", downloads=90000, likes=3, last_modified="2024-01-01T00:00:00.000Z"
    ).add(HubFile.lfs("popular-Q4_K_M.gguf", tiny))
    hub.add_repo(
        "slmtest/liked-GGUF", downloads=10, likes=900, last_modified="2025-06-01T00:00:00.000Z"
    ).add(HubFile.lfs("liked-Q4_K_M.gguf", tiny))
    no_gguf = hub.add_repo("slmtest/safetensors-only", tags=["safetensors"], license="mit")
    no_gguf.add(HubFile.small("README.md", b"# Not GGUF\n"))
    no_gguf.add(HubFile.small("model.safetensors", b"\0" * 64))

    gated = hub.add_repo("slmtest/gated-GGUF", gated=True, license="gemma")
    gated.add(HubFile.lfs("gated-Q4_K_M.gguf", tiny))
    private = hub.add_repo("slmtest/private-GGUF", private=True)
    private.add(HubFile.lfs("private-Q4_K_M.gguf", tiny))

    huge = hub.add_repo("slmtest/huge-GGUF")
    big = huge.add(HubFile.lfs("huge-Q4_K_M.gguf", tiny))
    big.declared_size = 10**16  # 10 PB: no disk has that much free


@pytest.fixture
def local_hub(
    monkeypatch: pytest.MonkeyPatch,
    tiny_model_source: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalHub]:
    """A running local Hub with the test repositories; the client is pointed at it."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub = LocalHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    populate(hub, tiny_model_source, tmp_path_factory.getbasetemp() / "hub-files")
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hub_env(local_hub: LocalHub, slmdesk_home: Path) -> dict[str, str]:
    """Environment for a ``python -m slmdesk`` subprocess talking to the local Hub."""
    env = dict(os.environ)
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_TOKEN", None)
    env["HF_ENDPOINT"] = local_hub.url
    env["SLMDESK_HOME"] = str(slmdesk_home)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env
