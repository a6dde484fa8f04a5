"""Named system prompts the user keeps and picks per conversation.

One JSON file in the config folder (`presets_path`), changed by one read-modify-write under a file
lock, so the window and ``slmdesk`` commands in a terminal never lose each other's changes. The
file is written to a temporary name and renamed. It is hostile input like every file on disk:
it is read only up to `MAX_FILE_BYTES`, and entries that are not a name and a text are skipped.

A new install starts with a few presets (`STARTER_PRESETS`); once the file exists, what the user
deleted stays deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.fileio import atomic_write_json

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_PRESETS = 200
MAX_NAME = 80
MAX_TEXT = 32 * 1024
LOCK_TIMEOUT = 10.0

STARTER_PRESETS: tuple[tuple[str, str], ...] = (
    ("Concise", "Answer briefly and directly. Use a list only when it helps."),
    (
        "Teacher",
        "Explain step by step in plain words, as to a curious student. End with a short summary.",
    ),
    (
        "Code helper",
        "You are a careful programmer. Give working code in fenced blocks with the language "
        "named, then one or two sentences on how it works.",
    ),
)


class PresetError(SlmdeskError):
    """A preset could not be created, changed or read; the message says why."""


@dataclass(frozen=True)
class Preset:
    """One named system prompt."""

    name: str
    text: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "text": self.text}


def presets_path() -> Path:
    """Where the presets are kept."""
    return paths.config_dir() / "prompt-presets.json"


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise PresetError("A preset needs a name.")
    if len(cleaned) > MAX_NAME:
        raise PresetError(f"A preset name can have at most {MAX_NAME} characters.")
    if any(not ch.isprintable() for ch in cleaned):
        raise PresetError("A preset name cannot contain control characters.")
    return cleaned


def _check_text(text: str) -> str:
    if len(text) > MAX_TEXT:
        raise PresetError(f"A preset's text can have at most {MAX_TEXT:,} characters.")
    return text


class PresetStore:
    """The presets file: list, find, save, rename and delete by name (case-insensitive)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or presets_path()

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> list[Preset] | None:
        """The presets on disk; None when there is no file yet."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PresetError(
                f"Could not read the presets in {self.path}: {exc.strerror or exc}."
            ) from None
        if len(data) > MAX_FILE_BYTES:
            raise PresetError(f"The presets file {self.path} is too large to be presets.")
        try:
            stored = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PresetError(f"The presets file {self.path} is damaged.") from None
        items = stored.get("presets") if isinstance(stored, dict) else None
        presets: list[Preset] = []
        seen: set[str] = set()
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            name, text = item.get("name"), item.get("text")
            if not isinstance(name, str) or not isinstance(text, str):
                continue
            try:
                preset = Preset(_clean_name(name), _check_text(text))
            except PresetError:
                continue
            if preset.name.lower() in seen:
                continue
            seen.add(preset.name.lower())
            presets.append(preset)
            if len(presets) >= MAX_PRESETS:
                break
        return presets

    def all(self) -> list[Preset]:
        """Every preset, in the order the user created them."""
        stored = self._read()
        if stored is None:
            return [Preset(name, text) for name, text in STARTER_PRESETS]
        return stored

    def get(self, name: str) -> Preset:
        """The preset called ``name``."""
        wanted = " ".join(name.split()).lower()
        for preset in self.all():
            if preset.name.lower() == wanted:
                return preset
        raise PresetError(f"There is no preset named {name.strip()!r}.")

    # -- changing ------------------------------------------------------------------------------

    @contextmanager
    def _update(self) -> Iterator[list[Preset]]:
        lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with lock:
                presets = self.all()
                yield presets
                atomic_write_json(self.path, {"presets": [p.as_dict() for p in presets]})
        except Timeout:
            raise PresetError("The presets are being changed elsewhere; try again.") from None
        except OSError as exc:
            raise PresetError(
                f"Could not save the presets in {self.path}: {exc.strerror or exc}."
            ) from None

    def save(self, name: str, text: str) -> Preset:
        """Create the preset, or replace the text of the one with that name."""
        preset = Preset(_clean_name(name), _check_text(text))
        with self._update() as presets:
            for index, known in enumerate(presets):
                if known.name.lower() == preset.name.lower():
                    presets[index] = Preset(known.name, preset.text)
                    return presets[index]
            if len(presets) >= MAX_PRESETS:
                raise PresetError(f"There can be at most {MAX_PRESETS} presets.")
            presets.append(preset)
        return preset

    def rename(self, name: str, new_name: str) -> Preset:
        """Give a preset another name."""
        new_clean = _clean_name(new_name)
        with self._update() as presets:
            index = _index_of(presets, name)
            for other, preset in enumerate(presets):
                if other != index and preset.name.lower() == new_clean.lower():
                    raise PresetError(f"There is already a preset named {preset.name!r}.")
            presets[index] = Preset(new_clean, presets[index].text)
            return presets[index]

    def delete(self, name: str) -> Preset:
        """Remove a preset; conversations keep the text they were given."""
        with self._update() as presets:
            return presets.pop(_index_of(presets, name))


def _index_of(presets: list[Preset], name: str) -> int:
    wanted = " ".join(name.split()).lower()
    for index, preset in enumerate(presets):
        if preset.name.lower() == wanted:
            return index
    raise PresetError(f"There is no preset named {name.strip()!r}.")
