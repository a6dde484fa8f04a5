"""Search and repository listings against the local Hub, through the real huggingface_hub client."""

from __future__ import annotations

import pytest
from hubserver import TINY_REPO, VALID_TOKEN, HubFile, LocalHub, closed_port_url, sha256_of

from slmdesk.hub import listing as hub
from slmdesk.hub.listing import (
    GatedRepoError,
    HubOfflineError,
    HubServerError,
    NoGGUFError,
    RemoteFile,
    RepoNotFoundError,
)
from slmdesk.models import hardware

BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)


def test_search_filters_gguf_and_sorts(local_hub: LocalHub) -> None:
    by_downloads = hub.search_models("", sort="downloads")
    ids = [r.repo_id for r in by_downloads]
    assert "slmtest/safetensors-only" not in ids  # not a GGUF repo
    assert "slmtest/private-GGUF" not in ids
    assert ids[0] == "slmtest/popular-GGUF"
    assert hub.search_models("", sort="likes")[0].repo_id == "slmtest/liked-GGUF"
    assert hub.search_models("", sort="updated")[0].repo_id == "slmtest/liked-GGUF"
    tiny = hub.search_models("tiny-llama")
    assert [r.repo_id for r in tiny] == [TINY_REPO]
    first = tiny[0]
    assert (first.author, first.downloads, first.likes) == ("slmtest", 5000, 12)
    assert first.license == "apache-2.0"
    assert first.last_modified and first.last_modified.startswith("2025-03-01")
    assert first.gated is False
    assert hub.search_models("gated")[0].gated is True
    assert len(hub.search_models("", limit=2)) == 2
    search_req = [r for r in local_hub.requests if r.path == "/api/models"]
    assert search_req, "the search must go to /api/models"


def test_files_lists_every_gguf_with_size_sha_quant_and_card(
    local_hub: LocalHub, tiny_model_source
) -> None:
    repo = hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE)
    names = [m.name for m in repo.models]
    assert names == ["tiny-llama-F16.gguf", "tiny-llama-Q8_0.gguf"]  # README/config left out
    f16 = repo.models[0]
    assert f16.size_bytes == tiny_model_source.stat().st_size
    assert f16.sha256 == sha256_of(tiny_model_source)
    assert f16.quantization == "F16"
    assert repo.models[1].quantization == "Q8_0"
    assert repo.revision == local_hub.repos[TINY_REPO].sha
    assert repo.card_text and "# Tiny Llama GGUF" in repo.card_text
    assert repo.license == "apache-2.0"
    # The quantized file is preferred over full precision when both fit.
    assert repo.recommended is not None and repo.recommended.name == "tiny-llama-Q8_0.gguf"
    assert all(m.verdict == "fits" for m in repo.models)


def test_split_files_are_grouped_and_projectors_not_recommended(
    local_hub: LocalHub, tiny_model_source
) -> None:
    repo = local_hub.add_repo("slmtest/split-GGUF")
    for i in (1, 2, 3):
        repo.add(HubFile.lfs(f"Q4_K_M/big-model-Q4_K_M-0000{i}-of-00003.gguf", tiny_model_source))
    repo.add(HubFile.lfs("big-model-Q2_K-00001-of-00002.gguf", tiny_model_source))  # part 2 missing
    repo.add(HubFile.lfs("mmproj-model-f16.gguf", tiny_model_source))
    listing = hub.list_repo_models("slmtest/split-GGUF", machine=BIG_MACHINE, with_card=False)
    by_name = {m.name: m for m in listing.models}
    assert set(by_name) == {"big-model-Q4_K_M", "mmproj-model-f16.gguf"}
    split = by_name["big-model-Q4_K_M"]
    assert len(split.files) == 3
    assert split.size_bytes == 3 * tiny_model_source.stat().st_size
    assert split.quantization == "Q4_K_M"
    assert by_name["mmproj-model-f16.gguf"].is_projector
    assert listing.recommended is split


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0"),
        ("gemma-3-270m-it-IQ3_XS.gguf", "IQ3_XS"),
        ("model.BF16.gguf", "BF16"),
        ("Q5_K_S/model-Q5_K_S-00001-of-00002.gguf", "Q5_K_S"),
        ("UD-Q4_K_XL/model-00001-of-00002.gguf", "Q4_K_XL"),
        ("model-f16.gguf", "F16"),
        ("my-model.gguf", None),
    ],
)
def test_quantization_from_name(name: str, quant: str | None) -> None:
    assert hub.quantization_from_name(name) == quant


def test_fit_verdicts_and_recommendation_follow_machine_memory() -> None:
    gb = 1 << 30
    files = [
        RemoteFile("m-Q2_K.gguf", 1 * gb, "a" * 64),
        RemoteFile("m-Q4_K_M.gguf", 2 * gb, "b" * 64),
        RemoteFile("m-Q8_0.gguf", 4 * gb, "c" * 64),
        RemoteFile("m-F16.gguf", 8 * gb, "d" * 64),
    ]
    models = hub.group_gguf_files("o/m", "rev", files)
    laptop = hardware.MachineInfo(
        total_ram=8 * gb, available_ram=5 * gb, physical_cores=4, logical_cores=8
    )
    hub.judge_fit(models, laptop)
    verdicts = {m.quantization: m.verdict for m in models}
    assert verdicts == {"Q2_K": "fits", "Q4_K_M": "fits", "Q8_0": "tight", "F16": "too big"}
    assert [m.quantization for m in models if m.recommended] == ["Q4_K_M"]
    tiny_machine = hardware.MachineInfo(1 * gb, gb // 2, 1, 1)
    hub.judge_fit(models, tiny_machine)
    assert not any(m.recommended for m in models)


def test_repo_not_found(local_hub: LocalHub) -> None:
    with pytest.raises(RepoNotFoundError, match="not found"):
        hub.list_repo_models("slmtest/does-not-exist")
    with pytest.raises(RepoNotFoundError, match="owner/name"):
        hub.list_repo_models("no-slash-here")


def test_repo_without_gguf(local_hub: LocalHub) -> None:
    with pytest.raises(NoGGUFError, match="no GGUF files"):
        hub.list_repo_models("slmtest/safetensors-only")


def test_private_repo_needs_token(local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RepoNotFoundError, match="private"):
        hub.list_repo_models("slmtest/private-GGUF")
    monkeypatch.setenv("HF_TOKEN", VALID_TOKEN)
    listing = hub.list_repo_models("slmtest/private-GGUF", with_card=False)
    assert [m.name for m in listing.models] == ["private-Q4_K_M.gguf"]


def test_gated_repo_lists_and_says_so(local_hub: LocalHub) -> None:
    listing = hub.list_repo_models("slmtest/gated-GGUF")
    assert listing.gated
    assert listing.card_text is None  # the card is behind the gate too


def test_gated_model_card_without_token_is_clear(local_hub: LocalHub) -> None:
    local_hub.repos["slmtest/gated-GGUF"].add(HubFile.small("README.md", b"# gated\n"))
    with pytest.raises(GatedRepoError, match="gated"):
        hub.fetch_model_card("slmtest/gated-GGUF")


def test_server_error_is_clear(local_hub: LocalHub) -> None:
    local_hub.faults.api_status = 503
    with pytest.raises(HubServerError, match=r"server error \(503\)"):
        hub.list_repo_models(TINY_REPO)


def test_no_network_at_all(monkeypatch: pytest.MonkeyPatch, local_hub: LocalHub) -> None:
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # nothing listens there
    with pytest.raises(HubOfflineError, match="You are offline"):
        hub.search_models("tiny")
    with pytest.raises(HubOfflineError, match="You are offline"):
        hub.list_repo_models(TINY_REPO)


def test_offline_mode_switch(local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubOfflineError, match="HF_HUB_OFFLINE"):
        hub.search_models("tiny")
    with pytest.raises(HubOfflineError, match="HF_HUB_OFFLINE"):
        hub.list_repo_models(TINY_REPO)
    assert local_hub.requests == []


def test_choose_model(local_hub: LocalHub) -> None:
    listing = hub.list_repo_models(TINY_REPO, machine=BIG_MACHINE, with_card=False)
    assert hub.choose_model(listing).name == "tiny-llama-Q8_0.gguf"
    assert hub.choose_model(listing, quant="f16").name == "tiny-llama-F16.gguf"
    assert hub.choose_model(listing, filename="tiny-llama-F16.gguf").quantization == "F16"
    with pytest.raises(hub.HubError, match="no Q4_K_M file; it offers: F16, Q8_0"):
        hub.choose_model(listing, quant="Q4_K_M")
    with pytest.raises(hub.HubError, match="no GGUF file"):
        hub.choose_model(listing, filename="other.gguf")
