"""Build the `LLM` a task file asks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memrl.llm.cache import ResponseCache
from memrl.llm.ledger import Ledger
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.managed import ManagedLLM, RetryPolicy
from memrl.llm.names import is_local
from memrl.spec import ModelSpec

__all__ = ["build_llm", "sampling_settings"]

#: Settings of `model.extra` that change what a model answers: the response cache keys on them, so an answer
#: drawn under other settings is never replayed. Others (`user`, `metadata`, headers, keys) do not key it.
SAMPLING = frozenset({
    "top_p", "top_k", "min_p", "typical_p", "presence_penalty", "frequency_penalty", "repeat_penalty",
    "repetition_penalty", "logit_bias", "seed", "reasoning_effort", "thinking", "verbosity", "extra_body",
})  # fmt: skip


def sampling_settings(extra: dict[str, Any]) -> str:
    """What of `extra` the response cache keys on: "" without sampling settings (older caches keep
    answering), else `|` and their canonical JSON."""
    chosen = {k: v for k, v in extra.items() if k in SAMPLING}
    return "|" + json.dumps(chosen, sort_keys=True, default=str) if chosen else ""


def build_llm(
    spec: ModelSpec,
    *,
    cache: ResponseCache | None = None,
    ledger: Ledger | None = None,
) -> ManagedLLM:
    """A ManagedLLM for this model. A `local` model starts (or reuses) the embedded server first."""
    if is_local(spec.name):
        from memrl.llm.local import ALIAS, SAMPLER, shared_server

        server = shared_server(spec.name, n_ctx=spec.n_ctx, prompt_cache_mb=spec.prompt_cache_mb)
        # As many requests in flight as the server is worth (`LocalServer.concurrency`): llama-cpp-python's
        # answers one at a time (2: one more keeps it busy), llama-server decodes its slots together (4).
        body = {**SAMPLER, **spec.extra.get("extra_body", {})}
        client = LiteLLMClient(
            f"openai/{ALIAS}",
            api_base=server.api_base,
            timeout_s=max(spec.timeout_s, 600.0),
            local=True,
            extra={**spec.extra, "extra_body": body},
            max_n=server.max_n,
        )
        concurrency = min(spec.max_concurrency, server.concurrency)
        name = spec.name if spec.name == "local" else f"local:{Path(spec.name[6:]).name}"
        # the cache keys on the sampler too: answers drawn under other settings (before SAMPLER) never answer
        cache_name = name + "|" + ",".join(f"{k}={v}" for k, v in sorted(body.items()))
        cache_name += sampling_settings({k: v for k, v in spec.extra.items() if k != "extra_body"})
    else:
        client = LiteLLMClient(
            spec.name,
            api_base=spec.api_base,
            api_key_env=spec.api_key_env,
            timeout_s=spec.timeout_s,
            local=False,
            extra=spec.extra,
        )
        name = spec.name
        concurrency = spec.max_concurrency
        cache_name = name + sampling_settings(spec.extra)
    return ManagedLLM(
        client,
        name=name,
        cache_name=cache_name,
        cache=cache,
        ledger=ledger,
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=spec.max_attempts, max_wait_s=spec.max_retry_wait_s),
    )
