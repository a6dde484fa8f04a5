"""The places the library reads other apps' models from, as configured, and their scans.

The user's choices live in the library index under ``"sources"`` (so the window and ``slmdesk``
commands in other terminals share them, changed under the index lock like every other change):

- ``disabled``: known apps the user turned off;
- ``folders``: folders the user added, each ``{"path", "layout"}`` (the layout is recognised when
  the folder is added: an Ollama store, a Hugging Face cache, or any folder of GGUF files);
- ``forgotten``: model files the user removed from the list; they stay hidden until the user
  turns their app (or folder) on again or adds it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.models.library.sources import folder, gpt4all, hf_cache, jan, lmstudio, ollama
from slmdesk.models.library.sources.base import (
    APP_TITLES,
    FOLDER,
    GPT4ALL,
    HF_CACHE,
    JAN,
    LMSTUDIO,
    OLLAMA,
    Scan,
)
from slmdesk.models.library.sources.known_places import detect

SCANNERS: dict[str, Callable[[Path], Scan]] = {
    HF_CACHE: hf_cache.scan,
    LMSTUDIO: lmstudio.scan,
    OLLAMA: ollama.scan,
    GPT4ALL: gpt4all.scan,
    JAN: jan.scan,
    FOLDER: folder.scan,
}


@dataclass(frozen=True)
class Source:
    """One place models are read from.

    Attributes:
        app: the layout (``huggingface``, ``lmstudio``, ``ollama``, ``gpt4all``, ``jan``,
            ``folder``).
        path: the folder.
        added: True for a folder the user added, False for an app's usual place.
        enabled: whether its models are listed.
        found: whether the folder exists now.
    """

    app: str
    path: Path
    added: bool
    enabled: bool
    found: bool

    @property
    def title(self) -> str:
        """How the app is shown: "Ollama", "Hugging Face cache", "Folder"."""
        return APP_TITLES.get(self.app, self.app)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``slmdesk models sources --json``)."""
        return {
            "app": self.app,
            "title": self.title,
            "path": str(self.path),
            "added": self.added,
            "enabled": self.enabled,
            "found": self.found,
        }


def settings_of(data: dict[str, Any]) -> dict[str, Any]:
    """The index's ``sources`` object, made well-formed (a hand-edited index must not break it)."""
    raw = data.get("sources")
    raw = raw if isinstance(raw, dict) else {}
    disabled = [a for a in raw.get("disabled", []) if isinstance(a, str)]
    folders = [
        f
        for f in raw.get("folders", [])
        if isinstance(f, dict) and isinstance(f.get("path"), str) and f.get("layout") in SCANNERS
    ]
    forgotten = [p for p in raw.get("forgotten", []) if isinstance(p, str)]
    return {"disabled": disabled, "folders": folders, "forgotten": forgotten}


def configured(data: dict[str, Any], env: Mapping[str, str] | None = None) -> list[Source]:
    """Every place: the known apps' usual folders (found or not), then the added folders."""
    settings = settings_of(data)
    sources = [
        Source(p.app, p.path, False, p.app not in settings["disabled"], p.found)
        for p in detect(env)
    ]
    for added in settings["folders"]:
        path = Path(added["path"])
        sources.append(Source(added["layout"], path, True, True, path.is_dir()))
    return sources


def _holds_hf_repos(path: Path) -> bool:
    try:
        return any(child.name.startswith("models--") for child in path.iterdir())
    except OSError:
        return False


def layout_of(path: Path) -> tuple[str, Path]:
    """The layout of a folder the user adds (Ollama store, Hugging Face cache or plain) and the
    folder to read: a Hugging Face home given for its cache means its ``hub`` folder."""
    if (path / "manifests").is_dir() and (path / "blobs").is_dir():
        return OLLAMA, path
    if _holds_hf_repos(path):
        return HF_CACHE, path
    if _holds_hf_repos(path / "hub"):
        return HF_CACHE, path / "hub"
    return FOLDER, path


def scan_sources(sources: list[Source]) -> dict[str, Scan | None]:
    """Each enabled source's scan by folder; None for a folder that is not there now."""
    scans: dict[str, Scan | None] = {}
    for source in sources:
        if not source.enabled or str(source.path) in scans:
            continue
        scans[str(source.path)] = SCANNERS[source.app](source.path) if source.found else None
    return scans
