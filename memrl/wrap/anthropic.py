"""`wrap_anthropic(client, policy)`: the Anthropic SDK client (sync or async) with learned memory.

Augmented: `messages.create / stream / parse / count_tokens` (so counted tokens include the memory), also
through `with_raw_response`, `with_streaming_response`, `with_options()` and `copy()`. With placement
`system` the memory joins the `system=` argument (a string, or a list of text blocks: a new text block is
appended, leaving any `cache_control` blocks before it untouched); with `user` it goes before the text of
the task message. Every other argument passes through as given, including anthropic 2.x's `extra_body`
(where `temperature` goes) and `output_config`. `client.beta.messages` is not augmented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from memrl.inject.place import Placement, inject, inject_system, query_text
from memrl.wrap._proxy import Route, Wrapped

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__all__ = ["wrap_anthropic", "AnthropicRewriter"]

C = TypeVar("C")


class AnthropicRewriter:
    def query(self, kwargs: dict[str, Any]) -> str | None:
        return query_text(kwargs["messages"]) if kwargs.get("messages") else None

    def apply(self, kwargs: dict[str, Any], block: str, placement: Placement) -> dict[str, Any]:
        if placement == "system":
            system = inject_system(kwargs.get("system"), block)
            return {**kwargs, "system": system} if system is not None else kwargs
        return {**kwargs, "messages": inject(kwargs["messages"], block, "user")}


def _routes() -> Route:
    calls = frozenset({"create", "stream", "parse", "count_tokens"})
    raw = Route(methods=calls, rewriter=AnthropicRewriter())
    messages = Route(
        methods=calls,
        rewriter=AnthropicRewriter(),
        children={"with_raw_response": raw, "with_streaming_response": raw},
    )
    api = {"messages": messages}
    wrapped_raw = Route(children=api)
    return Route(
        children={**api, "with_raw_response": wrapped_raw, "with_streaming_response": wrapped_raw},
        rewrap=frozenset({"with_options", "copy"}),
    )


ROUTES = _routes()


def wrap_anthropic(client: C, policy: MemoryPolicy) -> C:
    """`client` (an `anthropic.Anthropic` or `anthropic.AsyncAnthropic`) whose messages carry the policy's memory."""
    return Wrapped(client, ROUTES, policy)  # type: ignore[return-value]
