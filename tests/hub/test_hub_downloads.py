"""Downloads from the local Hub: resume, retries, verification, queue, hostile names, faults."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hubserver import TINY_REPO, VALID_TOKEN, HubFile, LocalHub, closed_port_url, sha256_of

from slmdesk.common import paths
from slmdesk.hub import listing as hub
from slmdesk.hub.downloads import (
    DownloadError,
    DownloadManager,
    DownloadOptions,
    DownloadStatus,
    DownloadStopped,
    DownloadStore,
    State,
    download_model,
    safe_filename,
)
from slmdesk.hub.listing import GatedRepoError, HubOfflineError, RemoteModel
from slmdesk.models import hardware
from slmdesk.models.library import Library

FAST = DownloadOptions(retries=3, backoff=0.02, read_timeout=10)
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)


def _model(repo_id: str = TINY_REPO, name: str = "tiny-llama-F16.gguf") -> RemoteModel:
    listing = hub.list_repo_models(repo_id, machine=BIG_MACHINE, with_card=False)
    return hub.choose_model(listing, filename=name)


def _models_dir_files() -> list[str]:
    return sorted(p.name for p in paths.models_dir().iterdir())


def test_download_verifies_and_registers(local_hub: LocalHub, tiny_model_source: Path) -> None:
    seen: list[DownloadStatus] = []
    status = download_model(_model(), progress=seen.append, options=FAST)
    assert status.state is State.DONE
    target = paths.models_dir() / "tiny-llama-F16.gguf"
    assert Path(status.path or "") == target
    assert sha256_of(target) == sha256_of(tiny_model_source)
    assert _models_dir_files() == ["tiny-llama-F16.gguf"]
    entry = Library().get(status.library_name or "")
    assert entry.provenance["source"] == "hub"
    assert entry.provenance["repo"] == TINY_REPO
    assert entry.provenance["file"] == "tiny-llama-F16.gguf"
    assert entry.provenance["sha256"] == sha256_of(tiny_model_source)
    states = [s.state for s in seen]
    assert states[0] is State.DOWNLOADING and states[-1] is State.DONE
    assert State.VERIFYING in states
    assert seen[-1].done_bytes == seen[-1].total_bytes == target.stat().st_size
    # The bytes came from the CDN origin, without the token, after a HEAD on the Hub.
    heads = [r for r in local_hub.requests if r.method == "HEAD" and "/resolve/" in r.path]
    assert heads
    assert all(not r.authorization for r in local_hub.cdn_requests())
    assert DownloadStore().get(status.task_id).state is State.DONE  # type: ignore[union-attr]


def test_cut_connection_resumes_with_only_the_remaining_bytes(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    size = tiny_model_source.stat().st_size
    local_hub.faults.cut_after = 1_500_000
    local_hub.faults.cut_times = 2
    status = download_model(_model(), options=FAST)
    assert status.state is State.DONE
    gets = local_hub.cdn_requests()
    assert [r.range for r in gets] == [None, "bytes=1500000-", "bytes=3000000-"]
    assert local_hub.bytes_served() == size  # nothing was downloaded twice


def test_server_error_mid_file_is_retried(local_hub: LocalHub, tiny_model_source: Path) -> None:
    # First request: cut mid-file; the next two: 503; then the rest of the file.
    local_hub.faults.cut_after = 2_000_000
    local_hub.faults.status = 503
    local_hub.faults.status_times = 2
    local_hub.faults.status_skip = 1
    status = download_model(_model(), options=FAST)
    assert status.state is State.DONE
    statuses = [r.status for r in local_hub.cdn_requests()]
    assert statuses == [200, 503, 503, 206]
    assert local_hub.bytes_served() == tiny_model_source.stat().st_size


def test_persistent_server_error_fails_clearly_and_keeps_the_partial_file(
    local_hub: LocalHub,
) -> None:
    local_hub.faults.cut_after = 1_000_000
    local_hub.faults.status = 500
    local_hub.faults.status_times = 100
    local_hub.faults.status_skip = 1  # the first request gets 1 MB through, then 500s
    with pytest.raises(DownloadError, match="kept failing") as info:
        download_model(_model(), options=FAST)
    assert info.value.retryable
    partial = paths.models_dir() / "tiny-llama-F16.gguf.incomplete"
    assert partial.stat().st_size == 1_000_000
    assert Library().entries() == []
    # Retry once the server is well: resumes from the partial file.
    local_hub.faults.status = None
    local_hub.reset_log()
    assert download_model(_model(), options=FAST).state is State.DONE
    assert [r.range for r in local_hub.cdn_requests()] == ["bytes=1000000-"]


def test_hash_mismatch_is_rejected_and_retry_works(local_hub: LocalHub) -> None:
    local_hub.faults.corrupt = True
    events: list[DownloadStatus] = []
    manager = DownloadManager(on_update=events.append, options=FAST)
    try:
        task_id = manager.add(_model())
        failed = manager.wait(task_id, timeout=60)
        assert failed.state is State.FAILED
        assert failed.error and "failed verification" in failed.error
        assert failed.retryable
        assert _models_dir_files() == []  # neither the file nor a partial is left
        assert Library().entries() == []
        local_hub.faults.corrupt = False
        manager.retry(task_id)
        done = manager.wait(task_id, timeout=60)
        assert done.state is State.DONE, done.error
        assert _models_dir_files() == ["tiny-llama-F16.gguf"]
    finally:
        manager.shutdown()


def test_gated_repo_needs_a_token(local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model("slmtest/gated-GGUF", "gated-Q4_K_M.gguf")
    with pytest.raises(GatedRepoError, match="gated"):
        download_model(model, options=FAST)
    assert _models_dir_files() == []
    assert local_hub.cdn_requests() == []
    monkeypatch.setenv("HF_TOKEN", VALID_TOKEN)
    assert download_model(model, options=FAST).state is State.DONE
    head = [r for r in local_hub.requests if r.method == "HEAD" and "gated" in r.path][-1]
    assert head.authorization  # the token went to the Hub...
    assert not any(r.authorization for r in local_hub.cdn_requests())  # ...never to the CDN


def test_disk_too_small_is_refused_before_starting(local_hub: LocalHub) -> None:
    model = _model("slmtest/huge-GGUF", "huge-Q4_K_M.gguf")
    assert model.size_bytes == 10**16
    with pytest.raises(DownloadError, match="Not enough disk space"):
        download_model(model, options=FAST)
    assert local_hub.cdn_requests() == []
    assert _models_dir_files() == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../evil.gguf", "evil.gguf"),
        ("..\\..\\evil.gguf", "evil.gguf"),
        ("/etc/evil.gguf", "evil.gguf"),
        ("C:\\Windows\\evil.gguf", "evil.gguf"),
        ("sub/dir/model-Q4_K_M.gguf", "model-Q4_K_M.gguf"),
        ("we!rd:na*me?.gguf", "we_rd_na_me_.gguf"),
        ("...hidden.gguf", "hidden.gguf"),
        ("a..b.gguf", "a.b.gguf"),
        ("mod\u00e9le\u202e.gguf", "mod_le_.gguf"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    result = safe_filename(name)
    assert result == safe
    assert "/" not in result and "\\" not in result and not result.startswith(".")


@pytest.mark.parametrize("name", ["..", "../", "/", "model.exe", ".gguf", "x/..", ""])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(DownloadError, match="unusable name"):
        safe_filename(name)


def test_hostile_filename_cannot_escape_the_models_folder(
    local_hub: LocalHub, tiny_model_source: Path, tmp_path: Path
) -> None:
    hostile = "..\\..\\..\\escape-Q4_K_M.gguf"
    repo = local_hub.add_repo("slmtest/hostile-GGUF")
    repo.add(HubFile.lfs(hostile, tiny_model_source))
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    status = download_model(_model("slmtest/hostile-GGUF", hostile), options=FAST)
    after = {p for p in tmp_path.rglob("*") if p.is_file()}
    new_files = after - before
    models = paths.models_dir().resolve()
    assert Path(status.path or "").parent.resolve() == models
    assert Path(status.path or "").name == "escape-Q4_K_M.gguf"
    created_models = [p for p in new_files if p.suffix == ".gguf"]
    assert created_models == [Path(status.path or "")]


def test_no_network_at_all(local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with pytest.raises(HubOfflineError, match="You are offline"):
        download_model(model, options=FAST)
    assert _models_dir_files() == []


def test_manager_pause_resume_cancel_on_named_threads(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    local_hub.faults.delay = 0.02
    local_hub.faults.chunk = 64 * 1024
    threads: set[str] = set()
    events: list[DownloadStatus] = []
    progressed = threading.Event()

    def on_update(status: DownloadStatus) -> None:
        threads.add(threading.current_thread().name)
        events.append(status)
        if status.state is State.DOWNLOADING and status.done_bytes > 500_000:
            progressed.set()

    manager = DownloadManager(on_update=on_update, options=FAST)
    try:
        task_id = manager.add(_model())
        assert progressed.wait(30)
        manager.pause(task_id)
        paused = manager.wait(task_id, timeout=30)
        assert paused.state is State.PAUSED
        partial = paths.models_dir() / "tiny-llama-F16.gguf.incomplete"
        kept = partial.stat().st_size
        assert kept > 0
        local_hub.faults.delay = 0
        local_hub.reset_log()
        manager.resume(task_id)
        done = manager.wait(task_id, timeout=60)
        assert done.state is State.DONE, done.error
        assert local_hub.cdn_requests()[0].range == f"bytes={kept}-"
        speeds = [e.speed_bps for e in events if e.state is State.DOWNLOADING]
        assert any(s > 0 for s in speeds)
        assert any(e.eta_seconds is not None for e in events)
        # Reports come from the manager's threads, never from the caller's.
        assert threading.current_thread().name not in threads
        assert threads == {f"slmdesk-download-{task_id}", "slmdesk-download-queue"}

        # Cancel: the partial file goes away and nothing enters the library.
        local_hub.faults.delay = 0.02
        progressed.clear()
        other = manager.add(_model(name="tiny-llama-Q8_0.gguf"))
        assert progressed.wait(30)
        manager.cancel(other)
        assert manager.wait(other, timeout=30).state is State.CANCELLED
        assert not (paths.models_dir() / "tiny-llama-Q8_0.gguf.incomplete").exists()
        assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
        assert DownloadStore().get(other) is None
    finally:
        manager.shutdown()


def test_downloads_queue_one_after_another(local_hub: LocalHub) -> None:
    manager = DownloadManager(options=FAST, max_parallel=1)
    try:
        first = manager.add(_model())
        second = manager.add(_model(name="tiny-llama-Q8_0.gguf"))
        assert manager.status(second).state in (State.QUEUED, State.DOWNLOADING, State.DONE)
        assert manager.wait(first, timeout=60).state is State.DONE
        assert manager.wait(second, timeout=60).state is State.DONE
        assert len(Library().entries()) == 2
    finally:
        manager.shutdown()


def test_restart_resumes_from_the_persisted_queue(
    local_hub: LocalHub, tiny_model_source: Path
) -> None:
    local_hub.faults.delay = 0.02
    local_hub.faults.chunk = 64 * 1024
    progressed = threading.Event()

    def on_update(status: DownloadStatus) -> None:
        if status.done_bytes > 1_000_000:
            progressed.set()

    first = DownloadManager(on_update=on_update, options=FAST)
    task_id = first.add(_model())
    assert progressed.wait(30)
    first.shutdown()  # the app quits mid-download
    partial = paths.models_dir() / "tiny-llama-F16.gguf.incomplete"
    kept = partial.stat().st_size
    assert 0 < kept < tiny_model_source.stat().st_size
    assert DownloadStore().get(task_id).state is State.QUEUED  # type: ignore[union-attr]

    local_hub.faults.delay = 0
    local_hub.reset_log()
    second = DownloadManager(options=FAST)
    try:
        assert second.restore() == [task_id]
        done = second.wait(task_id, timeout=60)
        assert done.state is State.DONE, done.error
        assert local_hub.bytes_served() == tiny_model_source.stat().st_size - kept
    finally:
        second.shutdown()


def test_stop_event_pauses_a_direct_download(local_hub: LocalHub) -> None:
    local_hub.faults.delay = 0.02
    local_hub.faults.chunk = 64 * 1024
    stop = threading.Event()

    def on_progress(status: DownloadStatus) -> None:
        if status.done_bytes > 300_000:
            stop.set()

    with pytest.raises(DownloadStopped):
        download_model(_model(), progress=on_progress, stop=stop, options=FAST)
    assert (paths.models_dir() / "tiny-llama-F16.gguf.incomplete").exists()
    assert Library().entries() == []


def test_offline_mode_refuses_downloads(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    model = _model()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubOfflineError, match="HF_HUB_OFFLINE"):
        download_model(model, options=FAST)
