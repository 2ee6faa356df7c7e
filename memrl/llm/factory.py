"""Build the `LLM` a task file asks for."""

from __future__ import annotations

from pathlib import Path

from memrl.llm.cache import ResponseCache
from memrl.llm.ledger import Ledger
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.managed import ManagedLLM, RetryPolicy
from memrl.llm.names import is_local
from memrl.spec import ModelSpec

__all__ = ["build_llm"]


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
        cache_name = name
    return ManagedLLM(
        client,
        name=name,
        cache_name=cache_name,
        cache=cache,
        ledger=ledger,
        max_concurrency=concurrency,
        retry=RetryPolicy(max_attempts=spec.max_attempts, max_wait_s=spec.max_retry_wait_s),
    )
