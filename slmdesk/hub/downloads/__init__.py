"""Resumable, verified downloads of Hub models into the library.

A download writes each file to ``<models_dir>/<safe name>.incomplete``, resumes it with an HTTP
``Range`` request after a network cut or an app restart (the queue is persisted in
`paths.downloads_state_path`), retries network failures with exponential backoff, checks free disk
space before the first byte, verifies size and SHA-256 (the LFS hash the Hub lists; the git blob
id for small files kept in git), and only then renames the file(s) into the models folder and
registers them with `Library.add_managed_file`. The library never sees half a file.

Two ways to use it:

- `download_model` runs one download on the calling thread (the CLI's ``pull``).
- `DownloadManager` queues several, each on its own thread named ``slmdesk-download-<id>``,
  with pause, resume, cancel and retry; `DownloadManager.shutdown` stops and joins them all.

The modules, one job each: `status` (states, errors, the progress snapshot), `names` (safe
local names, partial files), `store` (the persisted queue), `transfer` (one file: HEAD, ranged
GET, verify), `job` (one model end to end), `manager` (the queue and its threads).
"""

from __future__ import annotations

from slmdesk.hub.downloads.job import download_model
from slmdesk.hub.downloads.manager import DownloadManager
from slmdesk.hub.downloads.names import INCOMPLETE_SUFFIX, safe_filename, task_id_for
from slmdesk.hub.downloads.status import (
    ACTIVE_STATES,
    DiskFullError,
    DownloadError,
    DownloadStatus,
    DownloadStopped,
    ProgressCallback,
    State,
    VerificationError,
)
from slmdesk.hub.downloads.store import DownloadStore, DownloadTask
from slmdesk.hub.downloads.transfer import DownloadOptions

__all__ = [
    "ACTIVE_STATES",
    "INCOMPLETE_SUFFIX",
    "DiskFullError",
    "DownloadError",
    "DownloadManager",
    "DownloadOptions",
    "DownloadStatus",
    "DownloadStopped",
    "DownloadStore",
    "DownloadTask",
    "ProgressCallback",
    "State",
    "VerificationError",
    "download_model",
    "safe_filename",
    "task_id_for",
]
