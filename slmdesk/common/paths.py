"""Every location slmdesk reads or writes on disk.

All paths come from platformdirs, so data lands where each OS expects it. Setting the
environment variable ``SLMDESK_HOME`` re-roots every location under one folder: tests use it to
stay hermetic, and a portable install uses it to keep everything next to the app.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from platformdirs import PlatformDirs

from slmdesk.common.errors import SlmdeskError

APP_NAME = "slmdesk"
HOME_ENV = "SLMDESK_HOME"
MODELS_FOLDER_FILE = "models-folder.json"


class DataFolderError(SlmdeskError, OSError):
    """A folder slmdesk keeps its data in cannot be created or is not a folder.

    It is an `SlmdeskError` so the CLI and the window show its sentence, and also an `OSError`
    so code that already guards a folder access with ``except OSError`` keeps working.
    """

    def __init__(self, message: str, error_number: int | None = None, filename: str = "") -> None:
        if error_number is None:
            OSError.__init__(self, message)
        else:
            OSError.__init__(self, error_number, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _ensure_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; a failure becomes one clear sentence."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFolderError(_folder_problem(path, exc), exc.errno, str(path)) from None
    return path


def _folder_problem(path: Path, exc: OSError) -> str:
    root = home_override()
    hint = (
        f"set {HOME_ENV} to a folder you can write to"
        if root is None
        else f"{HOME_ENV} is {root}; point it at a folder you can write to"
    )
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return f"Cannot use {path} as a data folder: it (or a folder above it) is a file ({hint})."
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"Cannot create the data folder {path}: permission denied ({hint})."
    if exc.errno == errno.EROFS:
        return f"Cannot create the data folder {path}: the disk is read-only ({hint})."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"Cannot create the data folder {path}: the disk is full."
    reason = (exc.strerror or type(exc).__name__).lower()
    return f"Cannot create the data folder {path}: {reason} ({hint})."


def _dirs() -> PlatformDirs:
    return PlatformDirs(APP_NAME, appauthor=False, ensure_exists=False)


def home_override() -> Path | None:
    """The folder from ``SLMDESK_HOME``, or None when unset."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def _pick(sub: str, platform_path: str) -> Path:
    root = home_override()
    return _ensure_folder(root / sub if root else Path(platform_path))


def data_dir() -> Path:
    """Root of the user's data (models, database)."""
    root = home_override()
    return _ensure_folder(root if root else Path(_dirs().user_data_dir))


def models_dir() -> Path:
    """Where downloaded, imported-by-copy and optimized models live.

    The folder the user chose (`chosen_models_dir`), else ``models`` in the data folder.
    """
    chosen = chosen_models_dir()
    if chosen is None:
        return _ensure_folder(data_dir() / "models")
    if not chosen.is_dir():
        # never created here: on an unplugged drive that would silently fill the system disk
        raise DataFolderError(
            f"The models folder {chosen} is not available (is its drive connected?); connect it "
            "or choose another folder with `slmdesk models folder PATH`."
        )
    return chosen


def models_folder_setting_path() -> Path:
    """The small file naming the models folder the user chose (read by the CLI and the window)."""
    return config_dir() / MODELS_FOLDER_FILE


def chosen_models_dir() -> Path | None:
    """The models folder the user chose, or None for the default (also for an unreadable file)."""
    try:
        value = json.loads(models_folder_setting_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    path = value.get("path") if isinstance(value, dict) else None
    return Path(path) if isinstance(path, str) and path else None


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


def server_key_path() -> Path:
    """The local server's API key (the window's server), stored with owner-only permissions."""
    return config_dir() / "server_api_key"


def connections_path() -> Path:
    """Remote servers (name, address, API key), stored with owner-only permissions."""
    return config_dir() / "connections.json"
