"""One error tree for memrl, and the one place that decides what is worth retrying.

Retryability is decided from HTTP status codes and transport failures, never from matching error text:
provider SDKs map the same status to different classes (see reference/PROVIDERS.md), so the status wins.
"""

from __future__ import annotations

import asyncio
import json

__all__ = [
    "MemrlError",
    "ConfigError",
    "DataError",
    "VerifierError",
    "ProviderError",
    "AuthenticationError",
    "BadRequestError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "BudgetExceeded",
    "LocalModelError",
    "MalformedOutputError",
    "is_retryable",
    "RETRYABLE_STATUS",
]

#: HTTP statuses that a later attempt can fix: timeouts, conflicts, rate limits and server faults.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class MemrlError(Exception):
    """Base of every error memrl raises on purpose."""


class ConfigError(MemrlError):
    """A task file, override or argument is wrong. The message names the field and the fix."""


class DataError(MemrlError):
    """A dataset cannot be read or a row is unusable."""


class VerifierError(MemrlError):
    """A verifier reference cannot be resolved or a verifier failed in a way that is not the answer's fault."""


class LocalModelError(MemrlError):
    """The embedded local model server could not be started or reached."""


class MalformedOutputError(MemrlError):
    """A model's structured answer could not be parsed or repaired."""


class BudgetExceeded(MemrlError):
    """A token or dollar budget would be exceeded; the run stops cleanly with its state saved."""

    def __init__(self, what: str, used: float, limit: float) -> None:
        self.what, self.used, self.limit = what, used, limit
        super().__init__(
            f"{what} budget reached: used {used:g} of {limit:g}; the run stopped with its state saved"
        )


class ProviderError(MemrlError):
    """A model provider call failed. `status` is the HTTP status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.provider = provider


class AuthenticationError(ProviderError):
    """401/403: the key is missing, wrong or lacks access. Never retried."""


class BadRequestError(ProviderError):
    """4xx other than the retryable ones: the request itself is wrong. Never retried."""


class RateLimitError(ProviderError):
    """429: retried, waiting as long as Retry-After says (capped)."""


class ServerError(ProviderError):
    """5xx or an unusable 200 (malformed body, no choices): retried."""


class TransportError(ProviderError):
    """Timeouts, refused or reset connections, bodies cut mid-response: retried."""


def is_retryable(exc: BaseException) -> bool:
    """True when trying the same request again may succeed."""
    if isinstance(exc, (AuthenticationError, BadRequestError, BudgetExceeded, ConfigError)):
        return False
    if isinstance(exc, (RateLimitError, ServerError, TransportError)):
        return True
    if isinstance(exc, ProviderError):
        return exc.status is None or exc.status in RETRYABLE_STATUS or exc.status >= 500
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(status, int):
        return status in RETRYABLE_STATUS or status >= 500
    # Transport-level failures that escape the SDKs' own error types.
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError, json.JSONDecodeError)):
        return True
    try:
        import httpx

        if isinstance(exc, (httpx.TransportError, httpx.DecodingError)):
            return True
    except ImportError:  # pragma: no cover - httpx is a dependency
        pass
    return False
