"""What `bench/efficacy.py` gives a peer system (GEPA, youtu-agent's Training-Free GRPO) and what it gets back.

A peer learns from the same training items, with the same task model behind the same local server, at the
same number of rollouts as memrl's conditions. It returns a prompt (system text and user template); the
bench then scores the held-out split with that prompt through memrl's own evaluator, so every condition is
scored by one harness, one verifier and one set of seeds. A peer never sees a held-out item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from memrl.types import Item

__all__ = ["PeerContext", "PeerResult", "Chat", "Score"]

#: messages (OpenAI chat dicts), temperature, max_tokens → (text, prompt tokens, completion tokens).
#: Goes through memrl's response cache and ledger, so a resumed bench pays nothing twice.
Chat = Callable[[list[dict[str, str]], float, int], tuple[str, int, int]]
#: (item, answer text) → reward in [0, 1], by the task's verifier.
Score = Callable[[Item, str], float]


@dataclass
class PeerContext:
    train: list[Item]
    system: str  # the task's seed system prompt
    template: str  # the task's user template (jinja, `{{ question }}`)
    score: Score
    chat: Chat
    api_base: str  # the local server, OpenAI-compatible (for peers that bring their own client)
    model_alias: str  # the model id the server answers to
    budget_rollouts: int  # task-model answers to training items the peer may generate
    max_tokens: int
    temperature: float
    workdir: Path  # the peer's own folder in the bench run directory (resume state goes here)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class PeerResult(BaseModel):
    name: str
    system: str = Field(description="System prompt to score the held-out split with.")
    template: str = Field(description="User template (jinja, `{{ question }}`) to score it with.")
    rollouts: int = Field(description="Task-model answers to training items generated while learning.")
    calls: int = Field(description="All model calls while learning (rollouts, reflection, updates).")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    seconds: float = 0.0
    detail: dict[str, Any] = Field(default_factory=dict)
