"""User-facing errors.

Every failure a person can cause or fix (a bad file, a missing model, a full disk) is raised as
an `SlmdeskError` whose message is one human sentence. The CLI prints it as `error: ...` and the
window shows it in a dialog; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations


class SlmdeskError(Exception):
    """An error whose message is fit to show to the user as it is."""


class InvalidModelError(SlmdeskError):
    """The file is not a GGUF model llama.cpp can use."""


class ModelNotFoundError(SlmdeskError):
    """No model of that name or path."""


class LibraryError(SlmdeskError):
    """The library cannot do what was asked (name clash, missing file, ...)."""


INTERNAL_ERROR_MESSAGE = "An internal error stopped this; the details are in the log."


def user_message(exc: BaseException) -> str:
    """The sentence to show a person for ``exc``.

    An `SlmdeskError` already says what went wrong and what to do. Anything else is a bug in
    slmdesk: its text means nothing to the user (and may mislead, as "KeyError: 'size'" would),
    so they get `INTERNAL_ERROR_MESSAGE` while the caller logs the traceback.
    """
    if isinstance(exc, SlmdeskError):
        return str(exc)
    return INTERNAL_ERROR_MESSAGE
