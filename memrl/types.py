"""Typed data shared by every part of memrl: messages, completions, usage, items, rollouts, verdicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Message",
    "TokenLogprob",
    "Completion",
    "ToolStep",
    "Usage",
    "Item",
    "Verdict",
    "Rollout",
    "ItemResult",
    "question_key",
]

Role = Literal["system", "user", "assistant", "tool"]


def question_key(text: str) -> str:
    """What two questions must share to be the same question: their words, whitespace aside. Splits, the
    case memory's leak guard and a policy's outcome groups all compare questions by it."""
    return " ".join(text.split())


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        return cls(role="assistant", content=content)


class TokenLogprob(BaseModel):
    """A sampled token, its log-probability and, where the provider gives them, the top alternatives."""

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Usage(BaseModel):
    """Tokens and dollars spent by one call (or summed over many)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    cached_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
        )


class ToolStep(BaseModel):
    """One turn of a tool-using answer: what the model wrote, the code it ran and what came back."""

    text: str
    code: str | None = None
    output: str = ""
    ok: bool = True


class Completion(BaseModel):
    """One sampled answer with its usage. A call with n samples returns n of these. A tool-using answer
    (`act:`) keeps its turns in `steps`; `text` is then its final answer and `usage` the sum of its calls."""

    text: str
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    cached: bool = False
    steps: list[ToolStep] | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class Item(BaseModel):
    """One task item: the question shown to the model and what the verifier needs to judge an answer."""

    id: str
    question: str
    answer: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class Verdict(BaseModel):
    """A verifier's judgement of one answer."""

    reward: float
    correct: bool
    extracted: str | None = None
    reason: str = ""


class Rollout(BaseModel):
    """One sampled answer to an item, judged."""

    item_id: str
    sample: int
    messages: list[Message]
    completion: Completion
    verdict: Verdict


class ItemResult(BaseModel):
    """All k judged samples of one item in an evaluation."""

    item_id: str
    question: str
    answer: str | None
    samples: list[Completion]
    verdicts: list[Verdict]

    @property
    def n_correct(self) -> int:
        return sum(v.correct for v in self.verdicts)
