"""User settings (theme, default context, threads), kept in one JSON file.

Unknown keys are kept, so an older version does not drop a newer one's settings; missing keys
fall back to `DEFAULTS`. Writes are atomic.
"""

from __future__ import annotations

from typing import Any

from slmdesk.common import paths
from slmdesk.common.fileio import atomic_write_json, read_json

DEFAULTS: dict[str, Any] = {
    "theme": "system",  # system | light | dark
    "context_length": 0,  # 0: choose from the model and this machine's memory
    "threads": 0,  # 0: physical cores
    "last_model": "",
    "default_system_prompt": "You are a helpful assistant.",
}


def load() -> dict[str, Any]:
    """All settings, defaults filled in."""
    stored = read_json(paths.settings_path(), {})
    if not isinstance(stored, dict):
        stored = {}
    return {**DEFAULTS, **stored}


def get(key: str) -> Any:
    """One setting."""
    return load().get(key, DEFAULTS.get(key))


def update(**values: Any) -> dict[str, Any]:
    """Change some settings and save; returns all settings."""
    current = read_json(paths.settings_path(), {})
    if not isinstance(current, dict):
        current = {}
    current.update(values)
    atomic_write_json(paths.settings_path(), current)
    return {**DEFAULTS, **current}
