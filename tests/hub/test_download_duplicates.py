"""Downloads follow the library's one duplicate rule: bytes already there are never copied again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubFile, LocalHub

from slmdesk.common import paths
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import DownloadManager, DownloadOptions, State, download_model
from slmdesk.hub.listing import RemoteModel
from slmdesk.models import hardware
from slmdesk.models.library import DuplicateModelError, Library

FAST = DownloadOptions(retries=3, backoff=0.02, read_timeout=10)
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)


def _model(repo_id: str, name: str | None = None) -> RemoteModel:
    listing = hub.list_repo_models(repo_id, machine=BIG_MACHINE, with_card=False)
    return hub.choose_model(listing, filename=name)


def _gguf_files() -> list[str]:
    return sorted(p.name for p in paths.models_dir().iterdir() if p.suffix == ".gguf")


def test_the_same_bytes_from_another_repository_are_not_downloaded_again(
    local_hub: LocalHub,
) -> None:
    first = download_model(_model("slmtest/popular-GGUF"), options=FAST)
    assert first.state is State.DONE
    local_hub.reset_log()
    with pytest.raises(DuplicateModelError) as refused:
        download_model(_model("slmtest/liked-GGUF"), options=FAST)
    assert str(refused.value) == (
        "This model is already in the library as 'popular-Q4_K_M' (same contents); "
        "no second copy was made."
    )
    assert local_hub.bytes_served() == 0  # refused before the first byte
    assert _gguf_files() == ["popular-Q4_K_M.gguf"]
    assert [e.name for e in Library().entries()] == ["popular-Q4_K_M"]


def test_an_imported_file_counts_the_same_as_a_download(
    local_hub: LocalHub, tiny_model: Path
) -> None:
    Library().import_model(tiny_model, copy=False)  # linked: its hash is not known yet
    with pytest.raises(DuplicateModelError, match="as 'tiny-llama-F16'"):
        download_model(_model("slmtest/popular-GGUF"), options=FAST)
    assert _gguf_files() == []
    # the hash read for that check is kept in the index, for the next question
    record = json.loads(paths.library_index_path().read_text())["models"]["tiny-llama-F16"]
    assert len(record["sha256"]["value"]) == 64


def test_a_download_that_turns_out_identical_is_removed(
    local_hub: LocalHub, tiny_model_source: Path, tiny_model: Path
) -> None:
    # A GGUF kept in git: the Hub lists no SHA-256, so only the downloaded bytes can tell.
    local_hub.add_repo("slmtest/in-git-GGUF").add(
        HubFile.small("in-git-Q8_0.gguf", tiny_model_source.read_bytes())
    )
    Library().import_model(tiny_model, copy=False)
    with pytest.raises(DuplicateModelError) as refused:
        download_model(_model("slmtest/in-git-GGUF"), options=FAST)
    assert "already in the library as 'tiny-llama-F16'" in str(refused.value)
    assert "the downloaded copy was removed" in str(refused.value)
    assert sorted(p.name for p in paths.models_dir().iterdir()) == []  # no partial either
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]


def test_the_manager_ends_a_duplicate_as_done_pointing_at_the_entry(
    local_hub: LocalHub, tiny_model: Path
) -> None:
    entry = Library().import_model(tiny_model)
    manager = DownloadManager(options=FAST)
    try:
        task_id = manager.add(_model("slmtest/popular-GGUF"))
        status = manager.wait(task_id, timeout=60)
    finally:
        manager.shutdown()
    assert status.state is State.DONE
    assert status.duplicate_of == entry.name
    assert status.library_name == entry.name
    assert status.path == str(entry.path)
    assert status.as_dict()["duplicate_of"] == entry.name
    assert _gguf_files() == [tiny_model.name]


def test_pull_and_import_say_the_same_and_exit_1(
    hub_env: dict[str, str], tiny_model: Path, tmp_path: Path
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "slmdesk", *args],
            env=hub_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    pulled = run("pull", "slmtest/popular-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    copy = tmp_path / "renamed.gguf"
    shutil.copyfile(tiny_model, copy)
    imported = run("models", "import", str(copy))
    again = run("pull", "slmtest/liked-GGUF", "--json")
    expected = (
        "error: This model is already in the library as 'popular-Q4_K_M' (same contents); "
        "no second copy was made."
    )
    for proc in (imported, again):
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1] == expected
        assert "Traceback" not in proc.stderr
    assert again.stdout == ""
    # pulling the very same file again still succeeds (nothing to do)
    same = run("pull", "slmtest/popular-GGUF", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["library_name"] == "popular-Q4_K_M"


def test_the_starter_is_not_downloaded_a_second_time(
    local_hub: LocalHub, gemma_model: Path
) -> None:
    """The issue's case: the 253 MB Gemma starter, offered again by a repository on the Hub."""
    local_hub.add_repo("ggml-org/gemma-3-270m-GGUF").add(
        HubFile.lfs("gemma-3-270m-Q4_K_M.gguf", gemma_model)
    )
    starter = Library().import_model(gemma_model, copy=False, name="gemma-3-270m-Q4_K_M")
    assert starter.sha256 is None  # linked in place: never read in full
    model = _model("ggml-org/gemma-3-270m-GGUF")
    local_hub.reset_log()
    with pytest.raises(DuplicateModelError, match="as 'gemma-3-270m-Q4_K_M'"):
        download_model(model, options=FAST)
    assert local_hub.bytes_served() == 0
    assert _gguf_files() == []
    # the hash read once is kept: the library answers the next question from its index
    assert Library().get(starter.name).sha256 == model.sha256
