"""The Hugging Face hub cache: ``models--ORG--NAME/snapshots/REVISION/FILE.gguf``.

Layout (huggingface_hub's "Manage the cache" guide and the Hub's "Local cache" page): each repo
has ``blobs/`` (files named by their hash), ``snapshots/<commit>/`` (the repo's tree at that
commit, as symlinks into ``blobs/``; plain copies where symlinks are not possible) and
``refs/<branch>`` (a text file holding the commit the branch points at). When ``refs/main``
names a snapshot that exists, only that snapshot is listed, so older revisions do not show up as
extra models; otherwise every snapshot is.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.library.sources.base import (
    HF_CACHE,
    Found,
    Scan,
    entries_of,
    first_parts,
    gguf_files,
    is_dir,
    stem_of,
)

_MAX_REF_BYTES = 256


def _current_revision(repo: Path) -> str | None:
    """The commit ``refs/main`` points at, when it is a plausible name."""
    try:
        with open(repo / "refs" / "main", "rb") as handle:
            text = handle.read(_MAX_REF_BYTES).decode("ascii", "replace").strip()
    except OSError:
        return None
    return (
        text if text and "/" not in text and "\\" not in text and text not in (".", "..") else None
    )


def _repo_id(folder_name: str) -> str:
    """``models--org--name`` → ``org/name`` (a repo without an owner keeps its one part)."""
    return "/".join(folder_name[len("models--") :].split("--"))


def scan(cache: Path) -> Scan:
    """The GGUF files of every model repo in the cache, named ``ORG/NAME/FILE``."""
    result = Scan()
    for repo_entry in entries_of(cache, result):
        if not repo_entry.name.startswith("models--") or not is_dir(repo_entry):
            continue
        repo = Path(repo_entry.path)
        repo_id = _repo_id(repo_entry.name)
        snapshots = repo / "snapshots"
        revisions = [e.name for e in entries_of(snapshots, result) if is_dir(e)]
        current = _current_revision(repo)
        if current in revisions:
            revisions = [current]
        for revision in revisions:
            for path in first_parts(gguf_files(snapshots / revision, result)):
                found = Found(
                    f"{repo_id}/{stem_of(path)}",
                    path,
                    {"app": HF_CACHE, "repo": repo_id, "revision": revision, "file": path.name},
                )
                if not result.add(found):
                    result.skip(cache, "holds more models than slmdesk lists from one folder")
                    return result
    return result
