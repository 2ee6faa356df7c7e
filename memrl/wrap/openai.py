"""`wrap_openai(client, policy)`: the OpenAI SDK client (sync or async) with learned memory in its requests.

Augmented: `chat.completions.create / parse / stream` (the `messages`), and `responses.create / parse /
stream` (memory joins `instructions` with placement `system`, or goes before the text of `input` with
`user`), also through `with_raw_response`, `with_streaming_response`, `with_options()` and `copy()`.
Everything else is the client itself. Any call also takes `memrl_query="..."` to choose the memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from memrl.inject.place import Placement, add_text, inject, query_index, query_text
from memrl.wrap._proxy import Route, Wrapped

if TYPE_CHECKING:
    from memrl.policy import MemoryPolicy

__all__ = ["wrap_openai", "ChatRewriter", "ResponsesRewriter"]

C = TypeVar("C")


class ChatRewriter:
    """Chat-style requests: memory goes into `messages` (OpenAI, litellm, Anthropic with `user` placement)."""

    def query(self, kwargs: dict[str, Any]) -> str | None:
        return query_text(kwargs["messages"]) if kwargs.get("messages") else None

    def apply(self, kwargs: dict[str, Any], block: str, placement: Placement) -> dict[str, Any]:
        return {**kwargs, "messages": inject(kwargs["messages"], block, placement)}


class ResponsesRewriter:
    """The Responses API: `input` is a string or a list of input items; `instructions` is the system text."""

    def query(self, kwargs: dict[str, Any]) -> str | None:
        given = kwargs.get("input")
        if isinstance(given, str):
            return given
        return query_text(given) if given else None

    def apply(self, kwargs: dict[str, Any], block: str, placement: Placement) -> dict[str, Any]:
        if not block:
            return kwargs
        if placement == "system":
            current = kwargs.get("instructions")
            if current and block in current:
                return kwargs
            return {**kwargs, "instructions": add_text(current, block, front=False)}
        given = kwargs["input"]
        if isinstance(given, str):
            return kwargs if block in given else {**kwargs, "input": add_text(given, block, front=True)}
        if query_index(given) is None:  # tool outputs chained by `previous_response_id`: the task, with its
            return kwargs  # memory, is in the stored conversation already
        return {**kwargs, "input": inject(given, block, "user")}


def _routes() -> Route:
    def resource(rewriter: Any) -> Route:
        calls = frozenset({"create", "parse", "stream"})
        raw = Route(methods=calls, rewriter=rewriter)
        return Route(
            methods=calls,
            rewriter=rewriter,
            children={"with_raw_response": raw, "with_streaming_response": raw},
        )

    chat = Route(children={"completions": resource(ChatRewriter())})
    api = {"chat": chat, "responses": resource(ResponsesRewriter())}
    raw = Route(children=api)
    return Route(
        children={**api, "with_raw_response": raw, "with_streaming_response": raw},
        rewrap=frozenset({"with_options", "copy"}),
    )


ROUTES = _routes()


def wrap_openai(client: C, policy: MemoryPolicy) -> C:
    """`client` (an `openai.OpenAI` or `openai.AsyncOpenAI`) whose chat and responses requests carry the
    policy's memory. Typed as the client, so the app's code and its type checker see no change."""
    return Wrapped(client, ROUTES, policy)  # type: ignore[return-value]
