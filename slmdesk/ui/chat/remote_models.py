"""The remote models offered in the chat's model picker, listed off the GUI thread.

`list_remote_models` runs on the task pool: it reads the connections file and asks each server
for its models (`GET /v1/models`) with short limits, so a server that is down delays only its own
entries. Each model becomes a picker entry whose data is a `remote_ref` (``remote:NAME/MODEL``),
the same string a conversation stores, and whose label says where it runs.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slmdesk.chat.connections import Connection, ConnectionStore, model_label, remote_ref
from slmdesk.chat.remote import RemoteLimits, list_models
from slmdesk.common.errors import SlmdeskError

log = logging.getLogger(__name__)

# A picker must not wait a minute for a server that is down or slow.
PICKER_LIMITS = RemoteLimits(connect_timeout=3.0, first_byte_timeout=10.0)
MAX_SERVERS_AT_ONCE = 4


@dataclass(frozen=True)
class RemoteModels:
    """What the picker shows: (ref, label) per model, one sentence per server that failed, and
    how many servers are saved."""

    items: list[tuple[str, str]]
    problems: list[str]
    servers: int = 0


def list_remote_models(store: ConnectionStore | None = None) -> RemoteModels:
    """Every saved server's models (call on a worker thread: it reads a file and the network)."""
    connections = (store or ConnectionStore()).all()
    if not connections:
        return RemoteModels([], [])

    def one(connection: Connection) -> tuple[list[str], str]:
        try:
            return list_models(connection.target(""), PICKER_LIMITS), ""
        except SlmdeskError as exc:
            log.info("listing the models of %s failed: %s", connection.name, exc)
            return [], str(exc)

    workers = min(MAX_SERVERS_AT_ONCE, len(connections))
    with ThreadPoolExecutor(workers, thread_name_prefix="slmdesk-task-remote-models") as pool:
        results = list(pool.map(one, connections))
    items: list[tuple[str, str]] = []
    problems: list[str] = []
    for connection, (models, problem) in zip(connections, results, strict=True):
        if problem:
            problems.append(problem)
        for model in models:
            ref = remote_ref(connection.name, model)
            items.append((ref, model_label(ref)))
    return RemoteModels(items, problems, len(connections))
