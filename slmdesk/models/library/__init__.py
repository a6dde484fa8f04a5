"""The local model library: the models folder, its index, change events and safe imports.

Modules: `core` (the `Library`), `entry` (`ModelEntry`, names), `facts` (header facts that never
raise), `index` (the index file and its lock), `events` (change listeners), `copying`
(cancellable copies into the folder), `partials` (hidden partial files, stale ones removed) and
`content` (the one duplicate rule of imports and downloads: same size, same SHA-256),
`sources` (other apps' folders, read in place) and `source_sync` (their settings, the sync that
notices outside changes, forgetting).
"""

from __future__ import annotations

from slmdesk.models.library.content import DuplicateModelError
from slmdesk.models.library.copying import ImportCancelled
from slmdesk.models.library.core import STARTER_FILENAME, STARTER_PACKAGE, Library
from slmdesk.models.library.entry import ModelEntry, fingerprint, model_name_for
from slmdesk.models.library.events import LibraryChange

__all__ = [
    "STARTER_FILENAME",
    "STARTER_PACKAGE",
    "DuplicateModelError",
    "ImportCancelled",
    "Library",
    "LibraryChange",
    "ModelEntry",
    "fingerprint",
    "model_name_for",
]
