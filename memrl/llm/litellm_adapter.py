"""The litellm adapter: one raw call to any litellm model string, mapped onto memrl's types and errors.

It makes exactly one attempt. Retries, caching, concurrency and budgets live in `managed.py`, so the
SDK's own retry layers are switched off here (reference/PROVIDERS.md: they stack and ignore Retry-After).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import time
from typing import Any

from memrl import errors
from memrl.llm.base import Request
from memrl.llm.openai_direct import OpenAIDirect, direct_route
from memrl.types import Completion, TokenLogprob, Usage

__all__ = ["LiteLLMClient", "default_key_env", "import_litellm", "to_memrl_error"]

log = logging.getLogger(__name__)

#: Providers whose chat API returns n samples from one call; others get n single-sample calls.
_NATIVE_N = frozenset({"openai", "azure", "deepseek", "together_ai", "fireworks_ai"})
#: Providers whose chat API takes a sampling seed.
_SEEDED = frozenset({"openai", "azure", "deepseek", "together_ai", "fireworks_ai", "hosted_vllm", "vllm"})


def _share(usage: Usage, i: int, tokens: int | None) -> Usage:
    """Choice i's part of one call's usage: the call, its prompt and its price go to the first choice; with
    `tokens` known per choice each choice counts its own, else the first carries them all."""
    if tokens is not None:
        return (
            usage.model_copy(update={"completion_tokens": tokens})
            if i == 0
            else Usage(completion_tokens=tokens)
        )
    return usage if i == 0 else Usage()


def import_litellm() -> Any:
    """Import litellm without its start-up fetch of the online price map."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _header(exc: BaseException, name: str) -> str | None:
    for holder in (getattr(exc, "headers", None), getattr(exc, "litellm_response_headers", None)):
        if holder:
            for k, v in dict(holder).items():
                if k.lower() == name:
                    return str(v)
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if headers is not None:
        try:
            v = headers.get(name)
            return str(v) if v is not None else None
        except Exception:  # noqa: BLE001 - a mocked response may not have real headers
            return None
    return None


def _retry_after(exc: BaseException) -> float | None:
    raw = _header(exc, "retry-after-ms")
    if raw:
        try:
            return max(0.0, float(raw) / 1000)
        except ValueError:
            pass
    raw = _header(exc, "retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        when = email.utils.parsedate_to_datetime(raw)
        return max(0.0, when.timestamp() - time.time()) if when else None


#: Where litellm reads a provider's key when the task names no api_key_env, where it is not PROVIDER_API_KEY.
_DEFAULT_KEY_ENV = {
    "gemini": "GEMINI_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "bedrock": "AWS_ACCESS_KEY_ID",
    "sagemaker": "AWS_ACCESS_KEY_ID",
}


def default_key_env(provider: str) -> str:
    """The environment variable litellm reads the provider's key from, e.g. OPENAI_API_KEY."""
    return _DEFAULT_KEY_ENV.get(provider, provider.upper().replace("-", "_") + "_API_KEY")


def _key_hint(key_env: str | None) -> str:
    if not key_env:
        return "check the API key in the environment"
    if not os.environ.get(key_env):
        return (
            f"{key_env} is not set: put the key there, or name the variable that holds it in "
            "model.api_key_env"
        )
    return (
        f"the key in {key_env} was refused or lacks access: check it, or name the variable that holds the "
        "right key in model.api_key_env"
    )


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _connect_error(
    exc: BaseException, provider: str, api_base: str | None, kw: dict[str, Any]
) -> errors.ProviderError | None:
    """A connection that was never made (refused, unknown host), named by the address tried; the SDKs
    report it as 'server error 500: Connection error.' with no address."""
    causes = _causes(exc)
    kinds = {type(e).__name__ for e in causes}
    if not kinds & {"ConnectionRefusedError", "ConnectError", "ClientConnectorError", "gaierror"}:
        return None
    where = api_base or f"the {provider} API's address"
    if "ConnectionRefusedError" in kinds:
        why = f"nothing answered at {where} (connection refused)"
    else:
        why = f"could not connect to {where} ({str(causes[-1])[:200] or type(causes[-1]).__name__})"
    fix = "check model.api_base, and that the server there is running" if api_base else "check the network"
    return errors.TransportError(f"{provider}: {why}: {fix}", **kw)


def to_memrl_error(
    exc: BaseException, provider: str, *, api_base: str | None = None, key_env: str | None = None
) -> errors.ProviderError:
    """Classify any failure of a call by its HTTP status or transport kind, never by its text. `api_base`
    and `key_env` (the variable the key came from) are named in the errors they explain."""
    if isinstance(exc, errors.ProviderError):
        return exc
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    msg = str(getattr(exc, "message", None) or exc).strip() or type(exc).__name__
    msg = msg.splitlines()[0][:300]
    kw: dict[str, Any] = {"status": status, "provider": provider, "retry_after": _retry_after(exc)}
    name = type(exc).__name__
    if status in (401, 403) or name in ("AuthenticationError", "PermissionDeniedError"):
        return errors.AuthenticationError(
            f"{provider}: authentication failed ({status or name}); {_key_hint(key_env)}", **kw
        )
    unreachable = _connect_error(exc, provider, api_base, {**kw, "status": None})
    if unreachable is not None:
        return unreachable
    if status == 429:
        return errors.RateLimitError(f"{provider}: rate limited (429): {msg}", **kw)
    if status is not None and (status >= 500 or status in errors.RETRYABLE_STATUS):
        return errors.ServerError(f"{provider}: server error {status}: {msg}", **kw)
    if status is not None and 400 <= status < 500:
        return errors.BadRequestError(f"{provider}: request rejected ({status}): {msg}", **kw)
    if name in ("Timeout", "APITimeoutError", "APIConnectionError") or isinstance(
        exc, (TimeoutError, ConnectionError)
    ):
        return errors.TransportError(f"{provider}: {name}: {msg}", **kw)
    if isinstance(exc, json.JSONDecodeError) or errors.is_retryable(exc):
        return errors.TransportError(f"{provider}: unreadable response ({name}): {msg}", **kw)
    # litellm wraps odd bodies in APIError without a status: treat as a server fault.
    if name in ("APIError", "InternalServerError", "ServiceUnavailableError", "BadGatewayError"):
        return errors.ServerError(f"{provider}: {name}: {msg}", **kw)
    return errors.ProviderError(f"{provider}: {name}: {msg}", **kw)


_SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)


def _secret_values(kw: Any, secret: bool = False) -> list[str]:
    """The credentials among a call's arguments: every string under a key that names a secret."""
    if isinstance(kw, dict):
        return [
            v for k, x in kw.items() for v in _secret_values(x, secret or bool(_SECRET_KEY.search(str(k))))
        ]
    if isinstance(kw, (list, tuple)):
        return [v for x in kw for v in _secret_values(x, secret)]
    if secret and isinstance(kw, str) and len(kw) >= 6:
        words = kw.split()  # "Bearer sk-…": the credential is the last word
        return [kw, words[-1]] if len(words) > 1 and len(words[-1]) >= 6 else [kw]
    return []


def _without(err: errors.ProviderError, secrets: list[str]) -> errors.ProviderError:
    msg = str(err)
    for s in sorted(secrets, key=len, reverse=True):
        msg = msg.replace(s, "<redacted>")
    return type(err)(msg, status=err.status, retry_after=err.retry_after, provider=err.provider)


def _logprobs(choice: Any) -> list[TokenLogprob] | None:
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if content is None and isinstance(lp, dict):
        content = lp.get("content")
    if not content:
        return None
    out = []
    for t in content:
        get = t.get if isinstance(t, dict) else lambda k, _t=t: getattr(_t, k, None)
        top = get("top_logprobs") or []
        out.append(
            TokenLogprob(
                token=str(get("token")),
                logprob=float(get("logprob")),  # type: ignore[arg-type]  # None fails loudly, as it should
                top={
                    str(a["token"] if isinstance(a, dict) else a.token): float(
                        a["logprob"] if isinstance(a, dict) else a.logprob
                    )
                    for a in top
                },
            )
        )
    return out


class LiteLLMClient:
    """One attempt at a chat completion through litellm, or posted straight over HTTP to an unpriced
    OpenAI-compatible server (`memrl.llm.openai_direct`)."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        local: bool = False,
        extra: dict[str, Any] | None = None,
        max_n: int | None = None,
    ) -> None:
        """`max_n`: a local server that draws up to that many samples from one evaluation of the prompt
        (llama-server, one slot per sample); calls for more samples are split by `ManagedLLM`."""
        self.model = model
        self.provider = model.split("/", 1)[0] if "/" in model else "openai"
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.local = local
        self.extra = dict(extra or {})
        self.max_n = max_n
        self.native_n = (self.provider in _NATIVE_N and not api_base) or (max_n or 0) > 1
        # An unpriced OpenAI-compatible server is called over plain HTTP, without importing litellm.
        self._direct = (
            OpenAIDirect(model, api_base or "", timeout_s)
            if direct_route(model, api_base=api_base, local=local)
            else None
        )
        self._litellm: Any = None if self._direct is not None else import_litellm()

    def _api_key(self) -> str | None:
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise errors.ConfigError(
                    f"model.api_key_env names {self.api_key_env}, which is not set in the environment"
                )
            return key
        return "sk-no-key-needed" if self.local else None

    def _kwargs(self, request: Request, n: int, seed: int | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "timeout": self.timeout_s,
            "num_retries": 0,
            "max_retries": 0,
            **self.extra,
        }
        if n > 1:
            kw["n"] = n
        if seed is not None and (self.local or self.provider in _SEEDED):
            kw["seed"] = seed
        if request.stop:
            kw["stop"] = list(request.stop)
        if request.logprobs or (n > 1 and self.max_n):  # llama-server counts one choice's tokens: see below
            kw["logprobs"] = True
            if request.logprobs and request.top_logprobs:
                kw["top_logprobs"] = request.top_logprobs
        if request.json_schema is not None:
            if self.local:  # llama.cpp's server takes the schema inside json_object (it rejects json_schema)
                kw["response_format"] = {"type": "json_object", "schema": request.json_schema}
            else:
                kw["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": request.json_schema},
                }
        if self.api_base:
            kw["api_base"] = self.api_base
        key = self._api_key()
        if key:
            kw["api_key"] = key
        return kw

    async def complete_once(self, request: Request, n: int = 1, seed: int | None = None) -> list[Completion]:
        """One HTTP call returning n samples (n > 1 only where the provider supports it natively)."""
        kw = self._kwargs(request, n, seed)
        try:
            if self._direct is not None:
                resp = await self._direct.create(kw)
            else:
                resp = await self._litellm.acompletion(**kw)
        except errors.MemrlError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none swallowed
            key_env = self.api_key_env or (None if self.local else default_key_env(self.provider))
            err = to_memrl_error(exc, self.provider, api_base=self.api_base, key_env=key_env)
            # The SDKs also read keys from the environment (OPENAI_API_KEY, ...) when none is passed.
            known = _secret_values(kw) + _secret_values(dict(os.environ))
            hidden = [v for v in known if len(v) >= 8 and (v in str(err) or v in str(exc))]
            if hidden:  # a server or proxy that echoes the key: the error is logged and shown, the key is not
                raise _without(err, hidden) from None
            raise err from exc
        choices = list(getattr(resp, "choices", None) or [])
        if not choices:
            raise errors.ServerError(f"{self.provider}: response had no choices", provider=self.provider)
        u = getattr(resp, "usage", None)
        cost = 0.0
        if self._litellm is not None and not self.local:
            try:
                cost = float(self._litellm.completion_cost(completion_response=resp) or 0.0)
            except Exception:  # noqa: BLE001 - unknown price: count tokens, report $0, say so once
                log.debug("no price known for %s; cost counted as 0", self.model)
        usage = Usage(
            prompt_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(u, "completion_tokens", 0) or 0),
            cost_usd=cost,
            calls=1,
        )
        # llama-server's usage is the first choice's: each choice's own tokens are counted from its logprobs
        # (asked for above), the prompt (evaluated once) and the call go to the first choice.
        per_choice = [len(_logprobs(ch) or ()) for ch in choices] if self.max_n and len(choices) > 1 else []
        split = bool(per_choice) and all(per_choice)
        asked_logprobs = request.logprobs or not (self.max_n and n > 1)
        out = []
        for i, ch in enumerate(choices):
            msg = getattr(ch, "message", None)
            text = getattr(msg, "content", None) or ""
            finish = getattr(ch, "finish_reason", None)
            if finish == "content_filter" and not text:
                # An answer, not an error: the provider billed it, and asking again gets the same filter.
                # It is kept (and cached) as an empty answer, which verifiers score 0.
                log.info("%s: an answer was withheld by the content filter", self.provider)
            out.append(
                Completion(
                    text=text,
                    finish_reason=finish,
                    logprobs=_logprobs(ch) if asked_logprobs else None,
                    usage=_share(usage, i, per_choice[i] if split else None),
                    model=self.model,
                )
            )
        return out
