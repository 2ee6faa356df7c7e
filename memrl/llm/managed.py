"""ManagedLLM: the `LLM` every algorithm gets. It wraps one raw client with, in order:
cache lookup → budget check → concurrency slot → tenacity retries → cache write → ledger.

One retry policy for all providers: exponential backoff with jitter, Retry-After honoured (capped),
bounded attempts, and only for errors `is_retryable` accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from memrl.errors import ProviderError, is_retryable
from memrl.llm.base import Request
from memrl.llm.cache import ResponseCache, cache_keys
from memrl.llm.ledger import CallRecord, Ledger
from memrl.types import Completion

__all__ = ["ManagedLLM", "RawClient", "RetryPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RawClient(Protocol):
    """One attempt at a completion. `native_n`: n samples in one call. A client may also set `max_n`, the
    most samples one call may ask for (a local server with that many slots): calls are split to fit, and
    each call holds one concurrency slot per sample it asks for."""

    model: str
    native_n: bool

    async def complete_once(
        self, request: Request, n: int = 1, seed: int | None = None
    ) -> list[Completion]: ...


class RetryPolicy:
    """How long to wait before attempt k+1: Retry-After when the server says, else backoff with jitter."""

    def __init__(self, max_attempts: int = 5, max_wait_s: float = 60.0, initial_s: float = 0.5) -> None:
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self._backoff = wait_exponential_jitter(initial=initial_s, max=max(initial_s, min(30.0, max_wait_s)))
        self._template = AsyncRetrying(  # built once; each call runs on a copy
            stop=self._stop,
            wait=self.wait,
            retry=retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=self._log,
        )

    def _stop(self, state: RetryCallState) -> bool:
        return state.attempt_number >= self.max_attempts

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, (int, float)):
            return min(float(ra), self.max_wait_s)
        return float(self._backoff(state))

    def retrying(self) -> AsyncRetrying:
        """A fresh retrier for one call (a tenacity retrier keeps per-call state, so calls cannot share one)."""
        return self._template.copy()

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`await attempt()` under this policy. The first try runs bare, since most calls succeed at once;
        its failure is handed to tenacity as attempt 1, so waits, logging and the bound on attempts are
        the same as if tenacity had made it."""
        try:
            return await attempt()
        except Exception as e:
            if self.max_attempts <= 1 or not is_retryable(e):
                raise
            failed: Exception | None = e
        async for state in self.retrying():
            with state:
                if failed is not None:
                    exc, failed = failed, None
                    raise exc
                return await attempt()
        raise AssertionError("unreachable: tenacity returns or reraises")  # pragma: no cover

    @staticmethod
    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, wait)


class ManagedLLM:
    """An `LLM` over a raw client, with caching, budgets, a concurrency limit and retries."""

    def __init__(
        self,
        client: RawClient,
        *,
        name: str | None = None,
        cache: ResponseCache | None = None,
        ledger: Ledger | None = None,
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        cache_name: str | None = None,
    ) -> None:
        """`cache_name`: what the response cache keys on instead of `name`, where the same model answers
        differently under other sampler settings (the embedded server's, `memrl.llm.local.SAMPLER`)."""
        self.client = client
        self.name = name or client.model
        self.cache_name = cache_name or self.name
        self.cache = cache
        self.ledger = ledger or Ledger()
        self.retry = retry or RetryPolicy()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_n: int | None = getattr(client, "max_n", None)
        self._weight_cap = max_concurrency
        self._taking = asyncio.Lock()  # with max_n: a call takes its slots one by one, in turn
        self.attempts = 0  # HTTP attempts made, successful or not
        self.short_n = 0  # n-sample calls answered with fewer samples (a server that ignores `n`)

    async def complete(
        self, request: Request, *, n: int = 1, phase: str = "default", salt: str = ""
    ) -> list[Completion]:
        keys = cache_keys(self.cache_name, request, n, salt)
        found: dict[int, Completion] = {}
        if self.cache is not None:
            hits = self.cache.get_many(keys)
            for i, k in enumerate(keys):
                hit = hits.get(k)
                if hit is not None:
                    found[i] = hit.model_copy(update={"cached": True})
                    self.ledger.record(_record(self.name, phase, hit, 0.0, 0, cached=True))
        missing = [i for i in range(n) if i not in found]

        def keep(
            i: int, c: Completion
        ) -> None:  # cached the moment it arrives: a kill loses nothing paid for
            found[i] = c
            if self.cache is not None:
                self.cache.put(keys[i], self.name, c)

        if missing and self.client.native_n and len(missing) > 1:
            per = self._max_n or len(missing)
            chunks = [missing[j : j + per] for j in range(0, len(missing), per)]
            freshes = await asyncio.gather(
                *(self._call(request, len(ch), phase, None, short_ok=True) for ch in chunks)
            )
            rest: list[int] = []
            for chunk, fresh in zip(chunks, freshes, strict=True):
                for i, c in zip(chunk, fresh, strict=False):  # fresh may be short: see below
                    keep(i, c)
                rest += chunk[len(fresh) :]
            if rest:
                # A server that ignores `n` answers with one sample: it is kept and the rest are asked for
                # one at a time, not by retrying the whole call (which gets one sample again, and again).
                if not self.short_n:
                    log.warning(
                        "%s answered %d of %d samples from one call (does it ignore n?); the rest are "
                        "asked for one at a time", self.name, len(missing) - len(rest), len(missing),
                    )  # fmt: skip
                self.short_n += 1
            missing = rest
        if missing:
            # One call per sample, seeded from its cache key: a sample is reproducible where the
            # provider honours seeds (llama.cpp, OpenAI), and the n samples still differ.
            async def one(i: int) -> None:
                keep(i, (await self._call(request, 1, phase, int(keys[i][:8], 16)))[0])

            await asyncio.gather(*(one(i) for i in missing))
        return [found[i] for i in range(n)]

    async def _call(
        self, request: Request, n: int, phase: str, seed: int | None, short_ok: bool = False
    ) -> list[Completion]:
        """One call for n samples (retried as a whole); with `short_ok`, between 1 and n samples come back."""
        self.ledger.check()
        async with self._slot(n):
            self.ledger.check()
            t0 = time.perf_counter()
            attempts = 0

            async def attempt() -> list[Completion]:
                nonlocal attempts
                attempts += 1
                self.attempts += 1
                out = await self.client.complete_once(request, n, seed)
                if not (1 <= len(out) <= n if short_ok else len(out) == n):
                    raise ProviderError(f"asked for {n} samples, got {len(out)}", status=None)
                return out

            out = await self.retry.call(attempt)
        latency = time.perf_counter() - t0
        for j, c in enumerate(out):
            self.ledger.record(
                _record(self.name, phase, c, latency if j == 0 else 0.0, attempts if j == 0 else 0)
            )
        return out

    @contextlib.asynccontextmanager
    async def _slot(self, n: int) -> AsyncIterator[None]:
        """Concurrency: one slot per call, or with `max_n` one per sample (a call for 4 samples on a
        4-slot server waits until nothing else is in flight). Slots are taken in turn, one caller at a
        time, so two callers never each hold part of what both need."""
        if self._max_n is None:
            async with self._slots:
                yield
            return
        taken = 0
        try:
            async with self._taking:
                for _ in range(min(n, self._weight_cap)):
                    await self._slots.acquire()
                    taken += 1
            yield
        finally:
            for _ in range(taken):
                self._slots.release()


def _record(
    model: str, phase: str, c: Completion, latency: float, attempts: int, cached: bool = False
) -> CallRecord:
    return CallRecord(
        model=model,
        phase=phase,
        prompt_tokens=c.usage.prompt_tokens,
        completion_tokens=c.usage.completion_tokens,
        cost_usd=c.usage.cost_usd,
        latency_s=latency,
        attempts=attempts,
        cached=cached,
    )
