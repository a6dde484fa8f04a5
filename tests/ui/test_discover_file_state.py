"""What a Discover file row says, from a download status and the library's listing."""

from __future__ import annotations

from pathlib import Path

from slmdesk.hub.downloads import DownloadStatus, State
from slmdesk.hub.listing import RemoteFile, RemoteModel
from slmdesk.models.library import ModelEntry
from slmdesk.ui.discover import file_state as fs

SHA = "ab" * 32
MODEL = RemoteModel(
    repo_id="owner/repo-GGUF",
    revision="main",
    name="m-Q4_K_M.gguf",
    files=[RemoteFile("m-Q4_K_M.gguf", 1000, SHA)],
    quantization="Q4_K_M",
)


def _status(state: State, done: int = 0, error: str | None = None) -> DownloadStatus:
    return DownloadStatus("id", MODEL.repo_id, MODEL.name, state, done, 1000, error=error)


def _entry(name: str, sha256: str | None, size: int = 1000, **kw: object) -> ModelEntry:
    return ModelEntry(name, Path(f"/models/{name}.gguf"), size, True, 0.0, sha256=sha256, **kw)


def test_download_states_come_first() -> None:
    twin = fs.LibraryMatch("other", same_source=False)
    assert fs.file_state(_status(State.QUEUED), twin) == fs.FileState("Queued", fs.CANCEL)
    downloading = fs.file_state(_status(State.DOWNLOADING, 421), None)
    assert downloading == fs.FileState("Downloading 42 %", fs.CANCEL)
    assert fs.file_state(_status(State.PAUSED), None) == fs.FileState(
        "Paused", fs.RESUME, fs.CANCEL
    )
    failed = fs.file_state(_status(State.FAILED, error="the Hub failed"), None)
    assert (failed.label, failed.primary, failed.tooltip) == ("Failed", fs.RETRY, "the Hub failed")
    assert fs.file_state(_status(State.CANCELLED), None) == fs.FileState("", fs.DOWNLOAD)
    assert fs.file_state(None, None) == fs.FileState("", fs.DOWNLOAD)


def test_the_library_beats_an_old_failure() -> None:
    own = fs.LibraryMatch("m-Q4_K_M", same_source=True)
    assert fs.file_state(_status(State.FAILED), own) == fs.FileState("In library", fs.CHAT)
    damaged = fs.LibraryMatch("m-Q4_K_M", same_source=True, chat_ready=False)
    assert fs.file_state(None, damaged).primary == fs.SHOW
    twin = fs.file_state(None, fs.LibraryMatch("mine", same_source=False))
    assert (twin.label, twin.primary) == ("In library as mine", fs.USE)


def test_matches_follow_the_one_duplicate_rule() -> None:
    same = _entry("mine", SHA)
    assert fs.library_match(MODEL, [same], {}) == fs.LibraryMatch("mine", False)
    assert fs.library_match(MODEL, [_entry("mine", SHA, size=999)], {}) is None
    assert fs.library_match(MODEL, [_entry("mine", "cd" * 32)], {}) is None
    unknown = _entry("linked", None)
    assert fs.library_match(MODEL, [unknown], {}) is None
    assert fs.entries_to_hash([MODEL], [unknown, same, _entry("x", None, size=5)], {}) == [unknown]
    assert fs.library_match(MODEL, [unknown], {str(unknown.path): SHA}) is not None
    assert fs.entries_to_hash([MODEL], [unknown], {str(unknown.path): SHA}) == []
    gone = _entry("gone", SHA, status="missing")
    assert fs.library_match(MODEL, [gone], {}) is None
    own = _entry(
        "m-Q4_K_M",
        None,
        provenance={"source": "hub", "repo": MODEL.repo_id, "files": ["m-Q4_K_M.gguf"]},
    )
    assert fs.library_match(MODEL, [same, own], {}) == fs.LibraryMatch("m-Q4_K_M", True)
