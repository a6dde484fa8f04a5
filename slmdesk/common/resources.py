"""Find files from the ``resources/`` folder, from a source checkout and in a frozen bundle.

PyInstaller unpacks data next to the executable (``sys._MEIPASS``); a source checkout (or an
editable install) keeps ``resources/`` at the top of the repository, beside the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

from slmdesk.common.errors import SlmdeskError


def resources_dir() -> Path:
    """The ``resources`` folder in use."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    candidates = []
    if frozen_root:
        candidates.append(Path(frozen_root) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SlmdeskError("The application's resources folder is missing: reinstall slmdesk.")


def resource_path(*parts: str) -> Path:
    """A file inside ``resources/``, such as ``resource_path("icons", "app.svg")``."""
    return resources_dir().joinpath(*parts)
