"""LM Studio's models folder: ``models/PUBLISHER/REPO/FILE.gguf``.

LM Studio keeps downloads as plain files in a folder per Hugging Face repo (its docs, "Import
models": ``~/.lmstudio/models/publisher/model/model-file.gguf``). Files placed one level higher
(``models/PUBLISHER/FILE.gguf``) are listed too: people drop files in by hand.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.library.sources.base import (
    LMSTUDIO,
    Found,
    Scan,
    entries_of,
    first_parts,
    gguf_files,
    is_dir,
    stem_of,
)


def scan(models: Path) -> Scan:
    """Every GGUF model below the publisher/repo folders, named after its file."""
    result = Scan()
    for publisher in entries_of(models, result):
        if publisher.name.startswith(".") or not is_dir(publisher):
            continue
        folders = [Path(publisher.path)] + [
            Path(repo.path)
            for repo in entries_of(Path(publisher.path), result)
            if not repo.name.startswith(".") and is_dir(repo)
        ]
        for folder in folders:
            repo = folder.name if folder != Path(publisher.path) else None
            for path in first_parts(gguf_files(folder, result)):
                provenance = {"app": LMSTUDIO, "publisher": publisher.name, "file": path.name}
                if repo:
                    provenance["repo"] = f"{publisher.name}/{repo}"
                if not result.add(Found(stem_of(path), path, provenance)):
                    result.skip(models, "holds more models than slmdesk lists from one folder")
                    return result
    return result
