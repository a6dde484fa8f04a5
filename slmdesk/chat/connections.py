"""The user's remote servers: a name, an address and an optional API key for each.

Kept in one JSON file in the config folder (`paths.connections_path`), written with owner-only
permissions (0600) because it holds API keys, always through a temporary file and a rename. Keys
are never logged and never shown: `Connection.public` is what lists and JSON output print.

A conversation remembers a remote model as a reference string, ``remote:NAME/MODEL``
(`remote_ref`), in the same field as a local model's path, so reopening it picks the same server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmdesk.chat.endpoint import api_base, check_api_key
from slmdesk.chat.remote import RemoteTarget
from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.fileio import json_text
from slmdesk.common.format import printable
from slmdesk.common.private_file import (
    PrivateFileError,
    read_private_text,
    write_failure,
    write_private_text,
)

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 60
MAX_CONNECTIONS = 200
REF_PREFIX = "remote:"
_LOCK = threading.Lock()


class ConnectionsError(SlmdeskError):
    """A connection cannot be added, changed, found or saved."""


@dataclass(frozen=True)
class Connection:
    """One server. ``api_key`` is a secret: print `public`, never this object's fields."""

    name: str
    base_url: str
    api_key: str = ""

    def __repr__(self) -> str:  # a key must not reach a log through a repr
        return (
            f"Connection(name={self.name!r}, base_url={self.base_url!r}, key={bool(self.api_key)})"
        )

    def target(self, model: str) -> RemoteTarget:
        """``model`` on this server."""
        return RemoteTarget(self.base_url, model, self.api_key, self.name)

    @property
    def public(self) -> dict[str, Any]:
        """What may be shown: name, address and whether a key is set."""
        return {"name": self.name, "base_url": self.base_url, "has_key": bool(self.api_key)}


def check_name(name: str) -> str:
    """``name`` stripped, or `ConnectionsError` for an empty, long or odd one."""
    name = name.strip()
    if not name:
        raise ConnectionsError("Give the connection a name.")
    if len(name) > MAX_NAME_CHARS:
        raise ConnectionsError(f"A connection name is at most {MAX_NAME_CHARS} characters.")
    if "/" in name or printable(name) != name:
        raise ConnectionsError("A connection name cannot contain '/' or control characters.")
    return name


def remote_ref(connection: str, model: str) -> str:
    """How a conversation stores a remote model: ``remote:NAME/MODEL``."""
    return f"{REF_PREFIX}{connection}/{model}"


def parse_remote_ref(ref: str | None) -> tuple[str, str] | None:
    """(connection name, model) of a `remote_ref`, or None for a local model."""
    if not ref or not ref.startswith(REF_PREFIX):
        return None
    name, sep, model = ref[len(REF_PREFIX) :].partition("/")
    return (name, model) if sep and name and model else None


def model_label(ref: str) -> str:
    """How a model is named on screen: ``MODEL — on SERVER`` for a remote one, else as is."""
    parsed = parse_remote_ref(ref)
    if parsed is None:
        return ref
    return f"{printable(parsed[1])} — on {printable(parsed[0])}"


class ConnectionStore:
    """The connections file. Every change is one locked read-modify-write."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        """The file (in the config folder unless given)."""
        return self._path or paths.connections_path()

    def all(self) -> list[Connection]:
        """The connections, in the order they were added (a damaged file reads as none)."""
        return self._read()[0]

    def get(self, name: str) -> Connection:
        """The connection called ``name`` (case-insensitive)."""
        for item in self.all():
            if item.name.casefold() == name.strip().casefold():
                return item
        raise ConnectionsError(
            f"No connection is called {printable(name[:MAX_NAME_CHARS])!r}: add it in Settings → "
            "Connections or with 'slmdesk connections add'."
        )

    def save(self, connection: Connection, replace: str | None = None) -> Connection:
        """Add ``connection``, or replace the one called ``replace`` (an edit, maybe a rename).

        Raises:
            ConnectionsError / EndpointError: a bad name, address or key, a name taken, or
                the file cannot be written.
        """
        name = check_name(connection.name)
        api_base(connection.base_url)
        clean = Connection(name, connection.base_url.strip(), check_api_key(connection.api_key))
        with _LOCK:
            items, damaged = self._read()
            if replace is not None:
                kept = [c for c in items if c.name.casefold() != replace.strip().casefold()]
                if len(kept) == len(items):
                    raise ConnectionsError(
                        f"No connection is called {printable(replace[:MAX_NAME_CHARS])!r}."
                    )
            else:
                kept = list(items)
            if any(c.name.casefold() == name.casefold() for c in kept):
                raise ConnectionsError(f"A connection called {name!r} exists already.")
            if len(kept) >= MAX_CONNECTIONS:
                raise ConnectionsError(f"At most {MAX_CONNECTIONS} connections can be kept.")
            position = next(
                (
                    i
                    for i, c in enumerate(items)
                    if replace and c.name.casefold() == replace.strip().casefold()
                ),
                len(kept),
            )
            kept.insert(min(position, len(kept)), clean)
            self._write(kept, damaged)
        return clean

    def remove(self, name: str) -> Connection:
        """Forget the connection called ``name``; returns it."""
        with _LOCK:
            items, damaged = self._read()
            gone = self.get(name)
            self._write([c for c in items if c.name != gone.name], damaged)
        return gone

    # -- the file ----------------------------------------------------------------------------

    def _read(self) -> tuple[list[Connection], bool]:
        path = self.path
        if not path.exists():
            return [], False
        try:
            data = json.loads(read_private_text(path))
        except (OSError, ValueError, PrivateFileError):
            data = None
        rows = data.get("connections") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            log.warning("the connections file %s is damaged; it is read as empty", path)
            return [], True
        items: list[Connection] = []
        for row in rows[:MAX_CONNECTIONS]:
            try:
                items.append(
                    Connection(
                        check_name(str(row["name"])),
                        str(row["base_url"]),
                        check_api_key(str(row.get("api_key") or "")),
                    )
                )
            except (KeyError, TypeError, AttributeError, SlmdeskError):
                log.warning("a damaged entry in %s was skipped", path)
        return items, False

    def _write(self, items: list[Connection], damaged: bool) -> None:
        path = self.path
        rows = [{"name": c.name, "base_url": c.base_url, "api_key": c.api_key} for c in items]
        try:
            if damaged:  # keep what could not be read, for the user to look at
                path.replace(path.with_name(f"{path.name}.damaged-{int(time.time())}"))
            write_private_text(path, json_text({"version": 1, "connections": rows}))
        except OSError as exc:
            raise ConnectionsError(write_failure("the connections", path, exc)) from None
