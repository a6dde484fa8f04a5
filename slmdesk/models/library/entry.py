"""What the library knows about one model, and how a file gets its library name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmdesk.models.gguf_info import split_parts

# Entry states. "invalid" is what the JSON contract calls a damaged file: it is listed with a
# one-line reason so that it can be seen and removed, instead of breaking the whole listing.
STATUS_OK = "ok"
STATUS_MISSING = "missing"
STATUS_INVALID = "invalid"

_FINGERPRINT_CHUNK = 1 << 16


@dataclass
class ModelEntry:
    """One model in the library, with the facts the Library page and the CLI show."""

    name: str
    path: Path
    size_bytes: int
    managed: bool
    added_at: float
    status: str = STATUS_OK  # ok | missing | invalid
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None  # of the first file, once known (`content`); never read here
    settings: dict[str, Any] = field(default_factory=dict)  # `ModelSettings.as_dict` form

    @property
    def architecture(self) -> str | None:
        """Architecture from the cached header facts."""
        return self.facts.get("architecture")

    @property
    def quantization(self) -> str | None:
        """Quantization from the cached header facts."""
        return self.facts.get("quantization")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `models list --json` contract plus extras)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "parameters": self.facts.get("parameters"),
            "context_length": self.facts.get("context_length"),
            "block_count": self.facts.get("block_count"),
            "has_chat_template": self.facts.get("has_chat_template"),
            "managed": self.managed,
            "added_at": self.added_at,
            "status": self.status,
            "error": self.error,
            "provenance": self.provenance,
            "sha256": self.sha256,
            "settings": self.settings,
        }


def model_name_for(path: Path) -> str:
    """The library name of a file: its name without ``.gguf`` or the split suffix."""
    parts = split_parts(path)
    first = parts[0]
    stem = first.name[: -len(".gguf")] if first.name.lower().endswith(".gguf") else first.stem
    if len(parts) > 1:
        stem = stem.rsplit("-", 3)[0]
    return stem


def fingerprint(path: Path) -> str:
    """A quick identity of a model file: its size with the hash of its first and last 64 KiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            handle.seek(max(size - _FINGERPRINT_CHUNK, _FINGERPRINT_CHUNK))
            digest.update(handle.read(_FINGERPRINT_CHUNK))
    return digest.hexdigest()
