"""Exact facts of a file on the Hub before downloading it: its own header, read in ranges.

Against the local Hub (the real ``huggingface_hub`` client, Range requests to its CDN): what is
read for the Gemma starter, the cache that makes a second look free, ``files --json`` and the
hostile cases — a Hub that ignores Range, one that lies about the size, a header whose
vocabulary never ends.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubFile, LocalHub

from slmdesk.common.errors import SlmdeskError
from slmdesk.hub import listing as hub
from slmdesk.models import hardware
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.models.gguf_ranges import HARD_CAP

REPO = "slmtest/gemma-exact-GGUF"
FILE = "gemma-3-270m-it-Q4_K_M.gguf"
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)


@pytest.fixture
def gemma_hub(local_hub: LocalHub, gemma_model: Path) -> LocalHub:
    local_hub.add_repo(REPO).add(HubFile.lfs(FILE, gemma_model))
    return local_hub


def _served(hub_: LocalHub) -> int:
    return sum(r.body_bytes for r in hub_.cdn_requests())


def test_the_gemma_file_is_judged_from_its_own_header_within_4_mb(
    gemma_hub: LocalHub, gemma_model: Path
) -> None:
    listing = hub.list_repo_models(REPO, machine=BIG_MACHINE, with_card=False)
    (model,) = listing.models
    facts = hub.read_file_header(model)
    local = read_gguf_info(gemma_model)
    assert (facts.architecture, facts.parameters, facts.context_length) == (
        "gemma3",
        local.parameters,
        local.context_length,
    )
    assert facts.has_chat_template is local.has_chat_template
    assert facts.estimate(BIG_MACHINE).total_bytes == (
        hardware.estimate_memory(local, machine=BIG_MACHINE).total_bytes
    )
    assert facts.bytes_read == _served(gemma_hub)
    assert 0 < facts.bytes_read <= 4 << 20  # the header is 6.5 MB
    assert all(r.status == 206 for r in gemma_hub.cdn_requests())

    # Asked again (the window reopening the repository): the cache answers, nothing is read.
    gemma_hub.reset_log()
    again = hub.read_file_header(model)
    assert again.from_cache and again.parameters == facts.parameters
    assert gemma_hub.cdn_requests() == []


def test_files_json_has_each_files_header(gemma_hub: LocalHub, hub_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "slmdesk", "files", REPO, "--json"],
        env=hub_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["files"]
    assert entry["estimate_exact"] is True and entry["memory_estimate_exact"] is True
    header = entry["header"]
    assert header["architecture"] == "gemma3"
    assert header["context_length"] == 32768
    assert header["has_chat_template"] is False
    assert header["parameters"] > 200_000_000
    assert 0 < header["bytes_read"] <= 4 << 20


def test_a_hub_that_ignores_range_gets_the_size_estimate_and_a_sentence(
    gemma_hub: LocalHub,
) -> None:
    gemma_hub.faults.ignore_range = True
    listing = hub.list_repo_models(REPO, machine=BIG_MACHINE, with_card=False, read_header=True)
    (model,) = listing.models
    assert not model.estimate_exact and model.header is None
    assert model.estimate_bytes == hardware.estimate_from_file_size(model.size_bytes).total_bytes
    assert "ignored a range request" in listing.header_problems[model.name]


def test_a_hub_that_lies_about_the_size_is_named(local_hub: LocalHub, gemma_model: Path) -> None:
    file = local_hub.add_repo(REPO).add(HubFile.lfs(FILE, gemma_model))
    file.declared_size = file.size + 1_000_000
    (model,) = hub.list_repo_models(REPO, with_card=False).models
    with pytest.raises(SlmdeskError, match=r"lists 254,113,024 bytes .* but sends 253,113,024"):
        hub.read_file_header(model)


def test_a_vocabulary_that_never_ends_costs_at_most_the_cap(
    local_hub: LocalHub, gemma_model: Path, tmp_path: Path
) -> None:
    """Four million tokens claimed, then 39 MB of token texts and no end."""
    start = gemma_model.read_bytes()[:100_000]
    key = b"tokenizer.ggml.tokens"
    at = start.index(key) + len(key) + 8
    hostile = start[:at] + struct.pack("<Q", 4_000_000)
    path = tmp_path / "endless.gguf"
    path.write_bytes(hostile + (struct.pack("<Q", 5) + b"hello") * 3_000_000)
    local_hub.add_repo(REPO).add(HubFile.lfs("endless-Q4_K_M.gguf", path))
    listing = hub.list_repo_models(REPO, machine=BIG_MACHINE, with_card=False, read_header=True)
    (model,) = listing.models
    assert not model.estimate_exact
    assert "longer than the 8 MiB" in listing.header_problems[model.name]
    assert _served(local_hub) <= HARD_CAP
