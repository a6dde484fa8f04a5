"""Removes what a killed optimize run left behind.

Every file an optimize run writes before it is complete carries the writer's process id in its
name: ``.NAME.partial-PID`` (a conversion in progress), ``.NAME.optimizing-PID`` (a converted
model still being evaluated, not yet in the library) and ``compare-PID-TYPE.gguf`` (the plain
quantization a pruned model is compared with); a make-it-fit search builds its candidates in a
folder ``fit-PID-MILLISECONDS`` of the cache. A file or fit folder whose process is gone is a
leftover of a ``kill -9`` or a crash: it is never listed as a model and is removed by
`remove_stale`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import psutil

_STALE = re.compile(
    r"^\..+\.(?:partial|optimizing)-(?P<pid>\d+)(?:\.meta\.tmp)?$|^compare-(?P<cpid>\d+)-.+\.gguf$"
    r"|^fit-(?P<fpid>\d+)-\d+$"
)


def staging_path(dest: Path, kind: str) -> Path:
    """The hidden name ``dest`` has while it is being written (``kind``: partial/optimizing)."""
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid()}")


def remove_stale(folder: Path) -> list[Path]:
    """Delete leftovers of dead optimize runs in ``folder``; returns what was removed."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _STALE.match(name)
        if not match:
            continue
        pid = int(match["pid"] or match["cpid"] or match["fpid"])
        if pid == os.getpid() or psutil.pid_exists(pid):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if match["fpid"]:
                if path.is_symlink() or not path.is_dir():
                    continue  # only the folders a fit search makes
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed
