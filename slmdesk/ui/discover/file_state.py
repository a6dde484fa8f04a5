"""What a file row on the Discover page says: its download's state or its place in the library.

Plain values, no widgets: the controller feeds in the download manager's latest status and the
library's latest listing, and a `FileActions` cell shows the result. The library side follows the
library's one duplicate rule (`slmdesk.models.library.content`): a file whose bytes are already in
the library, from this repository or any other, is offered as that entry instead of a download.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slmdesk.hub.downloads import DownloadStatus, State
from slmdesk.hub.listing import RemoteModel
from slmdesk.models.library import ModelEntry
from slmdesk.models.library.content import Content, same_content, worth_hashing
from slmdesk.models.library.entry import STATUS_MISSING, STATUS_OK

DOWNLOAD = "download"
CANCEL = "cancel"
RESUME = "resume"
RETRY = "retry"
CHAT = "chat"
SHOW = "show"
USE = "use"

ACTION_TEXT = {
    DOWNLOAD: "Download",
    CANCEL: "Cancel",
    RESUME: "Resume",
    RETRY: "Retry",
    CHAT: "Open in chat",
    SHOW: "Show in library",
    USE: "Use it",
}


@dataclass(frozen=True)
class LibraryMatch:
    """The library entry that holds a file's bytes.

    Attributes:
        name: its library name.
        same_source: it was downloaded from this very file (else: the same bytes, from elsewhere).
        chat_ready: it can be opened in chat (not damaged).
    """

    name: str
    same_source: bool
    chat_ready: bool = True


@dataclass(frozen=True)
class FileState:
    """The row's words and what its buttons do."""

    label: str
    primary: str
    secondary: str | None = None
    tooltip: str = ""


def _content(model: RemoteModel) -> Content:
    return Content(model.size_bytes, model.files[0].sha256 if model.files else None)


def _downloaded_from(entry: ModelEntry, model: RemoteModel) -> bool:
    prov = entry.provenance
    files = prov.get("files", [prov.get("file")])
    return (
        prov.get("source") == "hub"
        and prov.get("repo") == model.repo_id
        and files == [f.filename for f in model.files]
    )


def library_match(
    model: RemoteModel, entries: Iterable[ModelEntry], hashes: Mapping[str, str]
) -> LibraryMatch | None:
    """The entry holding ``model``'s bytes (its own download first), or None.

    Args:
        model: a file of the repository on screen.
        entries: the library's latest listing.
        hashes: SHA-256 hashes computed since that listing, by file path.
    """
    wanted = _content(model)
    twin: LibraryMatch | None = None
    for entry in entries:
        if entry.status == STATUS_MISSING:
            continue
        own = _downloaded_from(entry, model)
        theirs = Content(entry.size_bytes, entry.sha256 or hashes.get(str(entry.path)))
        if own or same_content(wanted, theirs):
            match = LibraryMatch(entry.name, own, entry.status == STATUS_OK)
            if own:
                return match
            twin = twin or match
    return twin


def entries_to_hash(
    models: Iterable[RemoteModel], entries: Iterable[ModelEntry], hashes: Mapping[str, str]
) -> list[ModelEntry]:
    """Entries whose hash could match one of ``models`` but is not known yet (sizes are equal)."""
    wanted = [_content(m) for m in models if m.files and m.files[0].sha256]
    found = []
    for entry in entries:
        if entry.status == STATUS_MISSING or entry.sha256 or str(entry.path) in hashes:
            continue
        theirs = Content(entry.size_bytes, None)
        if any(worth_hashing(content, theirs) for content in wanted):
            found.append(entry)
    return found


def file_state(status: DownloadStatus | None, match: LibraryMatch | None) -> FileState:
    """What the row shows: a running download first, then the library, then a failure."""
    state = status.state if status is not None else None
    if status is not None and state == State.QUEUED:
        return FileState("Queued", CANCEL)
    if status is not None and state == State.DOWNLOADING:
        return FileState(f"Downloading {int(status.fraction * 100)} %", CANCEL)
    if status is not None and state == State.VERIFYING:
        return FileState("Verifying…", CANCEL)
    if status is not None and state == State.PAUSED:
        return FileState("Paused", RESUME, CANCEL)
    if match is not None:
        if match.same_source:
            return FileState("In library", CHAT if match.chat_ready else SHOW)
        return FileState(
            f"In library as {match.name}",
            USE if match.chat_ready else SHOW,
            tooltip=(
                f"The same file is already in your library as {match.name}; "
                "use it instead of downloading a second copy."
            ),
        )
    if status is not None and state == State.FAILED:
        return FileState("Failed", RETRY, tooltip=status.error or "")
    return FileState("", DOWNLOAD)
