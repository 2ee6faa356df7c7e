"""`wrap_litellm(policy)`: litellm's `completion` / `acompletion` with learned memory in `messages`.

    from memrl.wrap import wrap_litellm
    litellm = wrap_litellm(policy)            # instead of `import litellm`; call sites stay the same
    litellm.completion(model="openai/gpt-4o-mini", messages=[...])

Every other attribute is the real litellm module's. Calls also take `memrl_query="..."`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memrl.wrap._proxy import arewrite, rewrite
from memrl.wrap.openai import ChatRewriter

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__all__ = ["wrap_litellm", "LiteLLMWithMemory"]

_CHAT = ChatRewriter()


class LiteLLMWithMemory:
    """The litellm module with `completion` and `acompletion` augmented by `policy`."""

    def __init__(self, policy: MemoryPolicy, module: Any) -> None:
        self.policy, self.module = policy, module

    def completion(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _named(args, kwargs)
        return self.module.completion(*args, **rewrite(self.policy, _CHAT, kwargs))

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _named(args, kwargs)
        return await self.module.acompletion(*args, **await arewrite(self.policy, _CHAT, kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def __repr__(self) -> str:
        return f"<memrl wrapped litellm with {self.policy!r}>"


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """litellm takes `model` and `messages` positionally too: name them, so memory can find `messages`."""
    for name, value in zip(("model", "messages"), args, strict=False):
        kwargs[name] = value
    return args[2:], kwargs


def wrap_litellm(policy: MemoryPolicy, module: Any = None) -> LiteLLMWithMemory:
    """litellm (or `module`, anything with litellm's `completion`/`acompletion`) whose chat calls carry memory."""
    if module is None:
        import litellm as module
    return LiteLLMWithMemory(policy, module)
