"""What a MemoryPolicy records and returns (outcomes, learning results) and where its cases come from
(`CaseRetriever`; `SimilarityCases` by default, a Q-ranked retriever plugs in the same way)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from memrl.memory.base import CaseStore, Where
from memrl.memory.records import CaseRecord
from memrl.memory.retrieve import retrieve

__all__ = ["Outcome", "LearnResult", "CaseRetriever", "SimilarityCases"]

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
class CaseRetriever(Protocol):
    """Where cases come from. A parametric (Q-ranked) retriever implements the same two calls."""

    def retrieve(self, query: str, k: int) -> list[CaseRecord]: ...

    def learn(self, outcomes: list[Outcome]) -> int:
        """Write the outcomes as cases (and, for a parametric retriever, update its Q-function from the
        cases each outcome was shown, `Outcome.cases`, and its reward). Returns the cases written."""
        ...


class SimilarityCases:
    """Non-parametric Memento retrieval: the stored cases most similar to the query."""

    def __init__(
        self,
        store: CaseStore,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        mmr_lambda: float | None = None,
    ) -> None:
        self.store, self.where = store, where
        self.min_similarity, self.mmr_lambda = min_similarity, mmr_lambda
        self._lock = threading.Lock()

    def retrieve(self, query: str, k: int) -> list[CaseRecord]:
        if k <= 0 or not query.strip():
            return []
        with self._lock:
            hits = retrieve(
                self.store,
                query,
                k,
                where=self.where,
                min_similarity=self.min_similarity,
                mmr_lambda=self.mmr_lambda,
            )
        return [h.record for h in hits]

    def learn(self, outcomes: list[Outcome]) -> int:
        records = [
            CaseRecord(
                task=o.query, trajectory=o.trajectory, outcome=o.feedback, reward=o.reward, success=o.correct
            )
            for o in outcomes
        ]
        with self._lock:
            self.store.add(records)
        return len(records)
