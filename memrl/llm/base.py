"""The one seam between memrl and any model: a request, and an async `LLM` that answers it with n samples."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from memrl.types import Completion, Message

__all__ = ["Request", "LLM"]


class Request(BaseModel):
    """Everything that determines a model's answer. Two equal requests hit the same cache entry."""

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=256, ge=1)
    stop: tuple[str, ...] | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Ask for JSON matching this schema, in the provider's own constrained form."
    )

    @classmethod
    def of(cls, messages: list[Message] | tuple[Message, ...], **kw: Any) -> Request:
        if kw.get("stop") is not None:
            kw["stop"] = tuple(kw["stop"])
        return cls(messages=tuple(messages), **kw)


@runtime_checkable
class LLM(Protocol):
    """An async chat model.

    `phase` labels the spend for accounting (rollout, judge, learner, eval); `salt` separates otherwise
    equal requests in the response cache (two sampled evaluations of the same prompt at different epochs).
    """

    name: str

    async def complete(
        self, request: Request, *, n: int = 1, phase: str = "default", salt: str = ""
    ) -> list[Completion]: ...
