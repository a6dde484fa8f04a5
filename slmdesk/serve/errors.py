"""Errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``.

Clients (the official ``openai`` package among them) map the HTTP status to an exception class
and show ``message``, so every refusal is one clear sentence with the right status.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the server refuses or cannot answer, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        return error_body(self.message, self.type, self.param, self.code)


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-shaped error body."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400: the request itself is wrong."""
    return ApiError(400, message, param=param, code=code)


def model_not_found(name: str) -> ApiError:
    """404: no model of that name in the library."""
    return ApiError(
        404,
        f"The model {name!r} does not exist in the library.",
        param="model",
        code="model_not_found",
    )


def unauthorized() -> ApiError:
    """401: a missing or wrong API key (the key itself is never echoed)."""
    return ApiError(
        401,
        "Incorrect or missing API key: send it as 'Authorization: Bearer KEY'.",
        type="invalid_request_error",
        code="invalid_api_key",
    )


def too_large(limit: int) -> ApiError:
    """413: the request body is over the server's limit."""
    return ApiError(
        413,
        f"The request body is larger than the server accepts ({limit // 1024} KB).",
        code="request_too_large",
    )


def load_failed(name: str, reason: str) -> ApiError:
    """503: the named model exists but could not be loaded."""
    return ApiError(
        503,
        f"The model {name!r} could not be loaded: {reason}",
        type="server_error",
        param="model",
        code="model_load_failed",
    )


def internal_error() -> ApiError:
    """500: a bug; the details go to the log, not to the client."""
    return ApiError(
        500,
        "An internal error stopped this request; the details are in the server's log.",
        type="server_error",
        code="internal_error",
    )
