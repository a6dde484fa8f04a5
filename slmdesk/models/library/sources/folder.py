"""Any folder the user adds: the ``*.gguf`` files in it and its subfolders, a few levels deep.

Folder symlinks are not followed (a link back up would loop) and the walk stops at `MAX_DEPTH`.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.library.sources.base import (
    FOLDER,
    Found,
    Scan,
    entries_of,
    first_parts,
    gguf_files,
    stem_of,
)

MAX_DEPTH = 4


def scan(root: Path) -> Scan:
    """The GGUF files below ``root``, named after the file."""
    result = Scan()
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop(0)
        for path in first_parts(gguf_files(folder, result)):
            found = Found(stem_of(path), path, {"app": FOLDER, "file": path.name})
            if not result.add(found):
                result.skip(root, "holds more models than slmdesk lists from one folder")
                return result
        if depth >= MAX_DEPTH:
            continue
        for entry in entries_of(folder, result):
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), depth + 1))
            except OSError:
                continue
    return result
