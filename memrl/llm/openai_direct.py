"""Calls to an OpenAI-compatible server straight over HTTP (httpx), where litellm would add nothing.

litellm is what lets memrl reach every provider and price every call; for a server that speaks OpenAI's API
and has no price (memrl's embedded model, a self-hosted vLLM or llama.cpp server, a test server) it only
adds time: `import litellm` takes about 4 s on 2 cores (the `openai` SDK about 1 s), and each call passes
through its routing and logging. `LiteLLMClient` sends such calls here (`direct_route`), with the same
arguments, errors (`to_memrl_error` classifies these failures by status and transport kind, as it does
litellm's) and answers, and prices them at $0 as litellm would.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["OpenAIDirect", "direct_route", "priced"]

#: Arguments of litellm's call that are not the SDK's (the client holds the address, key and retries).
_LITELLM_ONLY = frozenset({"model", "api_base", "api_key", "num_retries", "max_retries"})


@functools.lru_cache(maxsize=1)
def _price_map() -> frozenset[str] | None:
    """The model names litellm's bundled price map prices (read without importing litellm), or None."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    try:
        return frozenset(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def priced(model: str) -> bool:
    """Whether litellm knows a price for `model` (`openai/gpt-4o-mini` or `gpt-4o-mini`); True when the
    price map cannot be read, so that litellm is asked."""
    names = _price_map()
    return names is None or model in names or model.split("/", 1)[-1] in names


def direct_route(model: str, *, api_base: str | None, local: bool) -> bool:
    """Whether calls for `model` go straight to the server: an OpenAI-compatible address (`openai/…` with
    `api_base`, or memrl's embedded server) that litellm has no price for."""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return provider == "openai" and (local or (api_base is not None and not priced(model)))


class HTTPFailure(Exception):
    """A non-2xx answer, carrying what `to_memrl_error` classifies by: the status, the server's message
    and the response (its Retry-After headers)."""

    def __init__(self, status_code: int, message: str, response: Any) -> None:
        super().__init__(f"Error code: {status_code} - {message}")
        self.status_code, self.message, self.response = status_code, message, response


def _error_message(resp: Any) -> str:
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        err = None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    return str(err) if isinstance(err, str) and err else resp.text[:300]


def _namespace(d: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**d)


class OpenAIDirect:
    """`POST {api_base}/chat/completions` with litellm-style keyword arguments, read as attributes the way
    the SDKs' answers are. One connection pool per event loop and key: memrl runs phases under separate
    `asyncio.run` calls, and a pooled connection belongs to the loop that opened it.

    httpx and not the openai SDK: memrl sends its own JSON body and reads the answer by attribute, retries
    itself and classifies failures by status (`to_memrl_error`), so the SDK would add only its import (about
    1 s on 2 cores, a sixth of a short run's wall time) and ~2 ms a call of argument and answer typing."""

    def __init__(self, model: str, api_base: str, timeout_s: float) -> None:
        self.model = model.split("/", 1)[1] if model.startswith("openai/") else model
        self.api_base, self.timeout_s = api_base, timeout_s
        self._clients: dict[tuple[int, str], Any] = {}

    def _client(self, api_key: str | None) -> Any:
        key = api_key or os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed"  # as litellm would send
        slot = (id(asyncio.get_running_loop()), key)
        client = self._clients.get(slot)
        if client is None:
            import httpx

            if all(s[0] != slot[0] for s in self._clients):
                self._clients = {}  # earlier loops are closed: their pools are dropped with them
            client = self._clients[slot] = httpx.AsyncClient(
                base_url=self.api_base.rstrip("/") + "/",
                headers={"Authorization": f"Bearer {key}"},
                timeout=httpx.Timeout(self.timeout_s),
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),  # as the SDK's
            )
        return client

    async def create(self, kw: dict[str, Any]) -> Any:
        """One call. Settings the SDK does not name (top_k, repeat_penalty…) and `extra_body` go in the same
        JSON body, as the SDK would send them. Timeouts and broken connections are raised as the builtin
        `TimeoutError` and `ConnectionError` (their httpx cause kept), a non-2xx answer as `HTTPFailure`."""
        import httpx

        body: dict[str, Any] = {"model": self.model}
        for k, v in kw.items():
            if k not in _LITELLM_ONLY and k not in ("extra_body", "timeout"):
                body[k] = v
        body.update(kw.get("extra_body") or {})
        client = self._client(kw.get("api_key"))
        try:
            resp = await client.post("chat/completions", json=body, timeout=kw.get("timeout", self.timeout_s))
        except httpx.TimeoutException as exc:
            raise TimeoutError(
                f"no answer from {self.api_base} within {kw.get('timeout', self.timeout_s)} s"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 300:
            raise HTTPFailure(resp.status_code, _error_message(resp), resp)
        return json.loads(resp.content, object_hook=_namespace)
