"""The seams of the task layer: what a dataset yields and what a verifier does."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from memrl.types import Item, Verdict

__all__ = ["Verifier", "Split"]


@runtime_checkable
class Verifier(Protocol):
    """Judges one answer to one item. Never raises for a wrong or malformed answer: that is reward 0."""

    name: str

    async def verify(self, item: Item, answer: str) -> Verdict: ...


class Split(BaseModel):
    """A seeded train/test split of one dataset."""

    train: list[Item]
    test: list[Item]
