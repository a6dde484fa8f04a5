"""The index's records of other apps' models, kept in step with their folders.

A record of such a model carries ``"source"`` (the app) and ``"source_root"`` (the folder it was
found in) and ``"managed": false``: the file is never slmdesk's to delete without being asked.

- A model found in an enabled source and not yet known gets a record.
- A record whose folder is there but whose file is no longer found is dropped (the other app
  deleted it).
- A record whose folder is not there now (an unplugged drive) is kept: the listing shows it
  "unavailable" until the folder comes back.
- A record whose source was turned off or removed is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slmdesk.models.library.sources.base import Scan
from slmdesk.models.library.sources.catalog import configured, scan_sources, settings_of

UniqueName = Callable[[str, dict[str, Any]], str]


def reconcile_sources(
    data: dict[str, Any], unique_name: UniqueName, env: Mapping[str, str] | None = None
) -> dict[str, Scan | None]:
    """Apply the source folders to ``data["models"]`` (a snapshot or the locked index).

    Returns:
        Each enabled source folder's scan (None for a folder that is not there now).
    """
    models: dict[str, Any] = data["models"]
    sources = configured(data, env)
    scans = scan_sources(sources)
    forgotten = set(settings_of(data)["forgotten"])
    found_paths = {root: {str(f.path) for f in scan.models} for root, scan in scans.items() if scan}
    for name in [n for n, r in models.items() if r.get("source")]:
        root = models[name].get("source_root")
        if root not in scans:
            del models[name]  # its source was turned off or removed
        elif root in found_paths and models[name]["path"] not in found_paths[root]:
            del models[name]  # the other app deleted it (an unavailable folder keeps it)
    known = {record["path"] for record in models.values()}
    for root, scan in scans.items():
        if scan is None:
            continue
        for found in scan.models:
            path = str(found.path)
            if path in known or path in forgotten:
                continue
            try:
                added_at = found.path.stat().st_mtime
            except OSError:
                continue  # removed while we looked
            name = unique_name(found.name, models)
            models[name] = {
                "path": path,
                "managed": False,
                "source": found.provenance["app"],
                "source_root": root,
                "added_at": added_at,
                "provenance": {**found.provenance, "folder": root},
            }
            known.add(path)
    return scans
