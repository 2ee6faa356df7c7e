"""Learned memory for an app's own model client: one wrap, no change at the call sites.

    from memrl import MemoryPolicy
    from memrl.wrap import wrap_openai

    policy = MemoryPolicy.load("runs/my-run")
    client = wrap_openai(OpenAI(), policy)     # or AsyncOpenAI(); wrap_anthropic(Anthropic(), policy)
    client.chat.completions.create(model=..., messages=[...])   # the request now carries the memory

The wrappers import no SDK: they work on whatever client object they are given.
"""

from memrl.wrap._proxy import QUERY_ARG, Wrapped, unwrap
from memrl.wrap.anthropic import wrap_anthropic
from memrl.wrap.litellm import LiteLLMWithMemory, wrap_litellm
from memrl.wrap.openai import wrap_openai

__all__ = [
    "QUERY_ARG",
    "LiteLLMWithMemory",
    "Wrapped",
    "unwrap",
    "wrap_anthropic",
    "wrap_litellm",
    "wrap_openai",
]
