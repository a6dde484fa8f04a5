"""Every location slmdesk reads or writes on disk.

All paths come from platformdirs, so data lands where each OS expects it. Setting the
environment variable ``SLMDESK_HOME`` re-roots every location under one folder: tests use it to
stay hermetic, and a portable install uses it to keep everything next to the app.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "slmdesk"
HOME_ENV = "SLMDESK_HOME"


def _dirs() -> PlatformDirs:
    return PlatformDirs(APP_NAME, appauthor=False, ensure_exists=False)


def home_override() -> Path | None:
    """The folder from ``SLMDESK_HOME``, or None when unset."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _pick(sub: str, platform_path: str) -> Path:
    root = home_override()
    path = root / sub if root else Path(platform_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Root of the user's data (models, database)."""
    root = home_override()
    path = root if root else Path(_dirs().user_data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Where downloaded, imported-by-copy and optimized models live."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Settings and the library index."""
    return _pick("config", _dirs().user_config_dir)


def cache_dir() -> Path:
    """Throw-away data: Hub listings, thumbnails, temporary evaluation files."""
    return _pick("cache", _dirs().user_cache_dir)


def logs_dir() -> Path:
    """Log files, rotated."""
    return _pick("logs", _dirs().user_log_dir)


def database_path() -> Path:
    """The SQLite database of conversations."""
    return data_dir() / "conversations.sqlite3"


def library_index_path() -> Path:
    """The JSON index of library entries (models registered in place, provenance)."""
    return config_dir() / "library.json"


def settings_path() -> Path:
    """The JSON settings file."""
    return config_dir() / "settings.json"


def downloads_state_path() -> Path:
    """The persisted download queue, so downloads resume after a restart."""
    return config_dir() / "downloads.json"


def token_path() -> Path:
    """The Hugging Face token, stored with owner-only permissions."""
    return config_dir() / "hf_token"
