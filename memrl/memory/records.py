"""Typed records kept in memory: lessons, cases, subtasks and tool calls.

Every record has an id, timestamps, a usage counter and free `metadata` (flat scalars, filterable). Each record
type says which of its fields are embedded (`embed_text`) and which scalar fields are filterable (`filter_fields`).
"""

from __future__ import annotations

import time
import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MetaValue",
    "MemoryRecord",
    "LessonRecord",
    "CaseRecord",
    "SubtaskRecord",
    "ToolCallRecord",
    "RECORD_TYPES",
]

#: What a metadata value may be: chromadb filters on flat scalars only.
MetaValue = str | int | float | bool


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


class MemoryRecord(BaseModel):
    """Fields every memory record has."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: The kind of record; also the default collection suffix.
    kind: ClassVar[str] = "record"
    #: Scalar fields stored as chroma metadata, so `where` filters can use them.
    filter_fields: ClassVar[tuple[str, ...]] = ()

    id: str = Field(default_factory=_new_id, min_length=1)
    created_at: float = Field(
        default_factory=time.time, description="Unix time the record was first written."
    )
    updated_at: float = Field(default_factory=time.time)
    uses: int = Field(default=0, ge=0, description="How often the record was put into a prompt.")
    last_used_at: float | None = None
    metadata: dict[str, MetaValue] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _check_meta_keys(cls, v: dict[str, MetaValue]) -> dict[str, MetaValue]:
        for key in v:
            if not key or key.startswith(("$", "#", "_")):
                raise ValueError(
                    f"metadata key {key!r} is reserved: keys must not be empty or start with $, # or _"
                )
        return v

    def embed_text(self) -> str:
        """The text whose embedding places this record in the vector space."""
        raise NotImplementedError


_COMMON = ("created_at", "updated_at", "uses")


class LessonRecord(MemoryRecord):
    """One lesson of the experience library (Training-Free GRPO's learned token prior)."""

    kind: ClassVar[str] = "experience"
    filter_fields: ClassVar[tuple[str, ...]] = (
        *_COMMON,
        "created_step",
        "helpful",
        "harmful",
        "version",
        "status",
    )

    text: str = Field(min_length=1)
    created_step: int = Field(default=0, ge=0)
    source_rollouts: list[str] = Field(
        default_factory=list, description="Ids of the rollouts it was learned from."
    )
    helpful: int = Field(default=0, ge=0)
    harmful: int = Field(default=0, ge=0)
    wins: int = Field(
        default=0,
        ge=0,
        description="Groups where the rollouts shown this lesson did better than those not shown it.",
    )
    losses: int = Field(default=0, ge=0, description="Groups where they did worse.")
    version: int = Field(default=1, ge=1, description="Bumped by every UPDATE of the text.")
    status: Literal["active", "retired"] = "active"

    def embed_text(self) -> str:
        return self.text


class CaseRecord(MemoryRecord):
    """A solved (or failed) task: what was asked, how it was attempted, how it went (Memento case memory)."""

    kind: ClassVar[str] = "cases"
    filter_fields: ClassVar[tuple[str, ...]] = (*_COMMON, "outcome", "reward", "success")

    task: str = Field(min_length=1)
    plan: str = ""
    trajectory: list[str] = Field(default_factory=list, description="Steps taken, in order.")
    outcome: str = ""
    reward: float = 0.0
    success: bool = False

    def embed_text(self) -> str:
        return self.task


class SubtaskRecord(MemoryRecord):
    """One subtask of a decomposed task and its result."""

    kind: ClassVar[str] = "subtasks"
    filter_fields: ClassVar[tuple[str, ...]] = (*_COMMON, "parent_task", "parent_id", "success")

    subtask: str = Field(min_length=1)
    parent_task: str = ""
    parent_id: str = Field(default="", description="Id of the parent case, when there is one.")
    result: str = ""
    success: bool = False

    def embed_text(self) -> str:
        return self.subtask


class ToolCallRecord(MemoryRecord):
    """One tool call: which tool, a summary of its arguments, how it went."""

    kind: ClassVar[str] = "tools"
    filter_fields: ClassVar[tuple[str, ...]] = (*_COMMON, "tool", "success", "latency_s")

    tool: str = Field(min_length=1)
    args_summary: str = ""
    outcome: str = ""
    error: str | None = None
    latency_s: float = Field(default=0.0, ge=0)

    @property
    def success(self) -> bool:
        return self.error is None

    def embed_text(self) -> str:
        return f"{self.tool}: {self.args_summary}" if self.args_summary else self.tool


#: kind -> record type, for export files and stats.
RECORD_TYPES: dict[str, type[MemoryRecord]] = {
    t.kind: t for t in (LessonRecord, CaseRecord, SubtaskRecord, ToolCallRecord)
}
