"""What a MemoryPolicy records and returns (outcomes, learning results) and the seam its cases come through
(`CaseSource`; `memrl.cases.CaseRetriever` by similarity by default, or ranked by a learned utility)."""

from __future__ import annotations

import logging
import time
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from memrl.memory.records import CaseRecord

__all__ = ["Outcome", "LearnResult", "CaseSource"]

log = logging.getLogger(__name__)


class Outcome(BaseModel):
    """One recorded attempt: the query, what was done, how it scored, and what memory it was shown."""

    query: str
    trajectory: list[str]
    reward: float
    correct: bool
    feedback: str = ""
    reference: str | None = None
    lessons: list[str] = Field(default_factory=list)
    cases: list[str] = Field(default_factory=list)
    skills: list[str] = Field(
        default_factory=list, description="Ids of the verified skills the program called."
    )
    at: float = Field(default_factory=time.time)


class LearnResult(BaseModel):
    """What one `learn()` did."""

    outcomes: int = Field(0, description="Recorded outcomes this update consumed.")
    groups: int = Field(0, description="Query groups large enough to compare.")
    learned_groups: int = Field(0, description="Groups whose rewards differed: sent to the learner.")
    compared: int = Field(0, description="Outcomes in those groups.")
    waiting: int = Field(0, description="Outcomes kept for later: their query has too few outcomes yet.")
    ops: dict[str, int] = Field(default_factory=dict)
    rejected: int = 0
    merged: int = Field(0, description="Lessons folded into an equal one by dedup.")
    pruned: int = Field(0, description="Lessons retired because paired evidence showed harm.")
    cases_written: int = 0
    library_version: int = 0
    lessons: int = 0
    note: str = ""


@runtime_checkable
class CaseSource(Protocol):
    """Where a MemoryPolicy's cases come from. `memrl.cases.CaseRetriever` (similarity or learned utility)
    implements it; so can any user object with the same two calls."""

    def retrieve(self, query: str, k: int) -> list[CaseRecord]: ...

    def learn(self, outcomes: list[Outcome]) -> int:
        """Write the outcomes as cases (and, for a parametric retriever, update its Q-function from the
        cases each outcome was shown, `Outcome.cases`, and its reward). Returns the cases written."""
        ...
