"""Jan's models: one folder per model, holding its GGUF file and a small description.

Jan before 0.6 kept ``<data folder>/models/<model id>/`` with ``model.json`` (``"id"``, ``"name"``)
next to the ``.gguf``; Jan 0.6 and later keep ``<data folder>/llamacpp/models/<model id>/`` with
``model.yml``. The model is listed under the ``name`` from ``model.json`` when there is one,
otherwise under its folder's id. Both trees are read when the given folder is the data folder;
a ``models`` folder given directly is read the same way.
"""

from __future__ import annotations

from pathlib import Path

from slmdesk.models.library.sources.base import (
    JAN,
    Found,
    Scan,
    entries_of,
    first_parts,
    gguf_files,
    is_dir,
    is_file,
    read_small_json,
)

_MAX_NAME_CHARS = 200


def _model_folders(root: Path) -> list[Path]:
    """The folders that hold one model each (``models/*`` and ``llamacpp/models/*``)."""
    candidates = [root / "models", root / "llamacpp" / "models"]
    trees = [c for c in candidates if c.is_dir()] or [root]
    return trees


def _title(folder: Path, result: Scan) -> str | None:
    """The ``name`` of a ``model.json``, when it is a short text."""
    description = folder / "model.json"
    if not is_file(description):
        return None
    data = read_small_json(description, result)
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and name.strip() and len(name) <= _MAX_NAME_CHARS:
        return " ".join(name.split())
    return None


def scan(root: Path) -> Scan:
    """Every model folder's GGUF files; one file keeps the folder's name, more add theirs."""
    result = Scan()
    for tree in _model_folders(root):
        for entry in entries_of(tree, result):
            if entry.name.startswith(".") or not is_dir(entry):
                continue
            folder = Path(entry.path)
            files = first_parts(gguf_files(folder, result))
            title = _title(folder, result) if files else None
            for path in files:
                name = title or entry.name
                if len(files) > 1:
                    name = f"{name}/{path.name[: -len('.gguf')]}"
                found = Found(name, path, {"app": JAN, "model_id": entry.name, "file": path.name})
                if not result.add(found):
                    result.skip(root, "holds more models than slmdesk lists from one folder")
                    return result
    return result
