"""The Hugging Face access token, for gated and private repositories.

The token comes from ``HF_TOKEN`` when set (scripts, CI) or else from the file at
`paths.token_path`, written with owner-only permissions. It is never logged: the only things
other code may print are `token_hint` and whether a token is set. The token files of other tools
(``~/.cache/huggingface/token``) are deliberately not read, so slmdesk never sends a credential the
user did not give it.
"""

from __future__ import annotations

import os

from slmdesk.common import paths
from slmdesk.common.errors import SlmdeskError
from slmdesk.common.private_file import load_secret, save_secret

TOKEN_ENV = "HF_TOKEN"


def load_token() -> str | None:
    """The token to send to the Hub, or None when the user has not given one."""
    value = os.environ.get(TOKEN_ENV, "").strip()
    if value:
        return value
    return load_secret(paths.token_path())


def save_token(token: str) -> None:
    """Store ``token`` for later sessions, readable by the owner only (0600).

    Raises:
        SlmdeskError: the token is empty or contains whitespace, or the file cannot be written
            (a read-only settings folder, a full disk): one sentence, never a raw OSError.
    """
    token = token.strip()
    if not token or any(ch.isspace() for ch in token):
        raise SlmdeskError("A Hugging Face token is one word without spaces (hf_...).")
    # paths.token_path raises paths.DataFolderError (an SlmdeskError) itself
    save_secret(paths.token_path(), token, "the token")


def clear_token() -> None:
    """Forget the stored token (``HF_TOKEN`` in the environment is not touched)."""
    paths.token_path().unlink(missing_ok=True)


def token_hint(token: str | None) -> str:
    """A harmless way to show which token is set: ``hf_…a1b2``, or ``none``."""
    if not token:
        return "none"
    return f"{token[:3]}…{token[-4:]}" if len(token) > 10 else "…"
