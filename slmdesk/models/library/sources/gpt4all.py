"""GPT4All's download folder: its models are plain ``*.gguf`` files directly in it.

The folder also holds chats (``*.chat``) and LocalDocs databases, which are left alone (GPT4All
wiki, "Uninstalling": the download path "contains the models that have been downloaded (*.gguf)").
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.library.sources.base import (
    GPT4ALL,
    Found,
    Scan,
    first_parts,
    gguf_files,
    stem_of,
)


def scan(folder: Path) -> Scan:
    """The GGUF files directly in the folder, named after the file."""
    result = Scan()
    for path in first_parts(gguf_files(folder, result)):
        if not result.add(Found(stem_of(path), path, {"app": GPT4ALL, "file": path.name})):
            result.skip(folder, "holds more models than slmdesk lists from one folder")
            break
    return result
