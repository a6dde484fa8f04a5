"""The window's server API key: checked like ``--api-key``, kept in a private file.

Like the Hugging Face token (`slmdesk.hub.token`), the key is stored apart from the settings
JSON, in a file only its owner can read (0600), written to a temporary name and renamed. It is
never logged; code may only show whether one is set.
"""

from __future__ import annotations

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.private_file import load_secret, save_secret

MAX_KEY_CHARS = 256


def check_api_key(key: str) -> str:
    """``key`` if clients can send it as a bearer token.

    Raises:
        SlmdeskError: empty, too long, spaces around it, or control characters.
    """
    if (
        not key.strip()
        or key != key.strip()
        or len(key) > MAX_KEY_CHARS
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in key)
    ):
        raise SlmdeskError(
            f"The API key must be 1 to {MAX_KEY_CHARS} printable characters without spaces "
            "around it."
        )
    return key


def load_api_key() -> str | None:
    """The stored key, or None when none was saved (or it cannot be read)."""
    return load_secret(paths.server_key_path())


def save_api_key(key: str) -> None:
    """Check ``key`` and store it for later sessions, readable by the owner only.

    Raises:
        SlmdeskError: the key is not usable, or the file cannot be written.
    """
    key = check_api_key(key)
    save_secret(paths.server_key_path(), key, "the API key")


def clear_api_key() -> None:
    """Forget the stored key."""
    paths.server_key_path().unlink(missing_ok=True)
