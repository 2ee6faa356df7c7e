"""Model names: `local`, `local:/path/model.gguf`, or a litellm model string `provider/model`."""

from __future__ import annotations

__all__ = ["check_model_name", "is_local", "KNOWN_PROVIDERS"]

#: Provider prefixes litellm routes; a name with an unknown prefix is almost always a typo.
KNOWN_PROVIDERS = frozenset(
    [
        "openai",
        "anthropic",
        "deepseek",
        "gemini",
        "vertex_ai",
        "azure",
        "azure_ai",
        "bedrock",
        "mistral",
        "groq",
        "together_ai",
        "fireworks_ai",
        "openrouter",
        "ollama",
        "ollama_chat",
        "hosted_vllm",
        "vllm",
        "cohere",
        "xai",
        "perplexity",
        "huggingface",
        "text-completion-openai",
        "replicate",
        "sagemaker",
        "databricks",
        "cerebras",
        "sambanova",
        "nvidia_nim",
        "lm_studio",
        "llamafile",
        "watsonx",
        "friendliai",
        "voyage",
        "dashscope",
        "moonshot",
    ]
)
_BARE_OPENAI = ("gpt-", "o1", "o3", "o4", "chatgpt-")
_BARE_ANTHROPIC = ("claude-",)


def is_local(name: str) -> bool:
    return name == "local" or name.startswith("local:")


def check_model_name(name: str) -> str:
    """Return the name if memrl can route it, else raise ValueError saying how to write it."""
    name = name.strip()
    if not name:
        raise ValueError(
            "model name is empty; use 'local' or a litellm model string such as 'openai/gpt-4o-mini'"
        )
    if is_local(name):
        if name.startswith("local:") and not name[6:].strip():
            raise ValueError("write 'local:/path/to/model.gguf' or just 'local'")
        return name
    if any(c.isspace() for c in name):
        raise ValueError(
            "a model name has no spaces: write it as the provider spells it, e.g. 'openai/gpt-4o-mini'"
        )
    if "/" in name:
        provider = name.split("/", 1)[0]
        if provider not in KNOWN_PROVIDERS:
            import difflib

            near = difflib.get_close_matches(provider, sorted(KNOWN_PROVIDERS), n=1)
            hint = f"; did you mean '{near[0]}/…'?" if near else ""
            raise ValueError(f"unknown model provider '{provider}' in {name!r}{hint}")
        return name
    if name.startswith(_BARE_OPENAI) or name.startswith(_BARE_ANTHROPIC):
        return name
    raise ValueError(
        f"unknown model {name!r}: write 'local', 'local:/path/model.gguf', or 'provider/model' "
        "(e.g. 'openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest')"
    )
