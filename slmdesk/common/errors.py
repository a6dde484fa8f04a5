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
