"""What the GGUF header of a file on the Hub says, read in ranges and remembered.

`read_header_facts` reads a file's header with `gguf_ranges.read_header_in_ranges` through the
same client, token rules and error mapping as downloads (the token goes to the Hub only, never to
the CDN it redirects to), and keeps the few facts Discover and ``slmdesk files`` show in a small
JSON file per file in the cache folder. The key includes the file's SHA-256 (or git blob id), so a
changed file is read again and reopening a repository reads nothing. At most `MAX_ENTRIES` files
are kept; the oldest go first.

No Qt here: the Discover page calls this from a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.common import paths
from slmdesk.common.fileio import atomic_write_json, read_json
from slmdesk.models import hardware
from slmdesk.models.gguf_info import GGUFInfo, printable
from slmdesk.models.gguf_ranges import RangeReader, read_header_in_ranges

CACHE_VERSION = 1
MAX_ENTRIES = 500
log = logging.getLogger(__name__)
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class HeaderFacts:
    """What one remote file's own header says, enough for the memory formula."""

    architecture: str
    parameters: int
    context_length: int
    has_chat_template: bool
    quantization: str
    weights_bytes: int
    data_offset: int
    shape: hardware.ModelShape
    bytes_read: int  # what reading it cost (when it was read; a cached copy costs nothing)
    from_cache: bool = False

    @classmethod
    def of(cls, info: GGUFInfo, bytes_read: int) -> HeaderFacts:
        """The facts of a parsed header."""
        return cls(
            architecture=printable(info.architecture, 100),
            parameters=info.parameters,
            context_length=info.context_length,
            has_chat_template=info.has_chat_template,
            quantization=info.quantization,
            weights_bytes=info.weights_bytes,
            data_offset=info.data_offset,
            shape=hardware.ModelShape.of(info),
            bytes_read=bytes_read,
        )

    def estimate(
        self, machine: hardware.MachineInfo | None = None, context_length: int | None = None
    ) -> hardware.MemoryEstimate:
        """The same estimate ``slmdesk inspect`` gives once the file is downloaded."""
        return hardware.estimate_for(self.weights_bytes, self.shape, context_length, machine)

    def as_dict(self) -> dict[str, Any]:
        """The ``header`` object of ``files --json``."""
        return {
            "architecture": self.architecture,
            "parameters": self.parameters,
            "context_length": self.context_length,
            "has_chat_template": self.has_chat_template,
            "bytes_read": self.bytes_read,
            "from_cache": self.from_cache,
        }

    def _stored(self) -> dict[str, Any]:
        shape = self.shape
        return {
            "version": CACHE_VERSION,
            **self.as_dict(),
            "quantization": self.quantization,
            "weights_bytes": self.weights_bytes,
            "data_offset": self.data_offset,
            "shape": [
                shape.n_layers,
                shape.n_head_kv,
                shape.key_length,
                shape.value_length,
                shape.vocab_size,
                shape.context_length,
            ],
        }

    @classmethod
    def _restored(cls, value: Any) -> HeaderFacts | None:
        """The facts from a cache file, or None when it is not one this version wrote."""
        try:
            if value.get("version") != CACHE_VERSION:
                return None
            numbers = [int(n) for n in value["shape"]]
            if len(numbers) != 6 or min(numbers) < 0:
                return None
            return cls(
                architecture=str(value["architecture"]),
                parameters=int(value["parameters"]),
                context_length=int(value["context_length"]),
                has_chat_template=bool(value["has_chat_template"]),
                quantization=str(value["quantization"]),
                weights_bytes=int(value["weights_bytes"]),
                data_offset=int(value["data_offset"]),
                shape=hardware.ModelShape(*numbers),
                bytes_read=int(value["bytes_read"]),
                from_cache=True,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


def cache_folder() -> Path:
    """Where the facts of remote headers are kept."""
    return paths.cache_dir() / "remote-headers"


def _cache_path(repo_id: str, filename: str, content_id: str) -> Path:
    key = hashlib.sha256(f"{repo_id}\0{filename}\0{content_id}".encode()).hexdigest()[:40]
    return cache_folder() / f"{key}.json"


def cached_facts(repo_id: str, filename: str, content_id: str | None) -> HeaderFacts | None:
    """The facts read earlier for this very file (same content), if kept."""
    if not content_id:
        return None
    return HeaderFacts._restored(read_json(_cache_path(repo_id, filename, content_id), None))


def remember_facts(repo_id: str, filename: str, content_id: str | None, facts: HeaderFacts) -> None:
    """Keep ``facts`` for next time; a cache that cannot be written is only logged."""
    if not content_id:
        return
    try:
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(_cache_path(repo_id, filename, content_id), facts._stored())
        _prune(folder)
    except OSError as exc:
        log.info("remote header facts not cached: %s", exc)


def _prune(folder: Path) -> None:
    """Remove the oldest entries beyond `MAX_ENTRIES`."""
    entries = list(folder.glob("*.json"))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) - MAX_ENTRIES]:
        old.unlink(missing_ok=True)


def read_header_facts(
    read: RangeReader, repo_id: str, filename: str, size_bytes: int, content_id: str | None
) -> HeaderFacts:
    """The facts of one remote file: from the cache, else read in ranges and then cached.

    Raises:
        InvalidModelError: the header is not GGUF, damaged, or too long (a sentence).
        HubError: from ``read``.
    """
    facts = cached_facts(repo_id, filename, content_id)
    if facts is not None:
        return facts
    header = read_header_in_ranges(read, filename.rsplit("/", 1)[-1], size_bytes)
    facts = HeaderFacts.of(header.info, header.bytes_read)
    remember_facts(repo_id, filename, content_id, facts)
    return facts


def check_content_range(value: str | None, offset: int, size_bytes: int, name: str) -> str | None:
    """Why a 206 answer's ``Content-Range`` is wrong for a read at ``offset`` (None: it is right)."""
    match = _CONTENT_RANGE_RE.fullmatch((value or "").strip())
    if match is None:
        return f"The Hub answered a range request for {name} without saying which bytes it sent."
    if int(match[1]) != offset:
        return (
            f"The Hub sent {name} from byte {int(match[1]):,} when byte {offset:,} was asked for."
        )
    if match[3] != "*" and int(match[3]) != size_bytes:
        return f"The Hub lists {size_bytes:,} bytes for {name} but sends {int(match[3]):,}."
    return None
