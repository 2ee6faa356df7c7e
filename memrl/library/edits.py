"""What the learner proposes (`Op`, `Proposal`) and the rules that turn a step's proposals into edits.

`reconcile` rules, in order: an operation naming an unknown or retired id, or an ADD/UPDATE without text, is
rejected with a logged reason; a text about "the new lesson" or "the library" instead of the task, and a text
that repeats a specific number or name of its own group's question, are rejected (lessons must carry over to other problems; formulas, units and format examples are fine, and so are the numbers and names most training
questions share, `specifics.task_terms`); texts
over the word cap are cut; DELETE beats UPDATE on the same lesson; of several UPDATEs of one lesson the first
(in batch order) wins; an ADD whose text equals an earlier ADD's joins it, and one that equals an active
lesson becomes support for that lesson. Near-equal texts are judged later (`memrl.library.curate`), and the
size cap is applied after the edit bounds, so a refused DELETE never lets the library outgrow its cap.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from pydantic import BaseModel, Field

from memrl.library.core import Library
from memrl.library.specifics import copied_specifics, talks_about_itself
from memrl.spec import TFGRPOSpec

__all__ = [
    "Op",
    "Proposal",
    "Edit",
    "Rejection",
    "reconcile",
    "apply_edits",
    "copied_specifics",
    "same_text",
    "fold",
]

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+")


class Op(BaseModel):
    op: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    id: str | None = None
    content: str | None = None


class Proposal(BaseModel):
    """What one group with an advantage proposes: its operations, and the rollouts they came from."""

    item_id: str
    order: int
    ops: list[Op]
    sources: list[str]
    question: str = Field(default="", description="The group's question: lessons must not copy it.")
    lessons: list[str] = Field(default_factory=list)
    advantage: float = 0.0  # best reward minus mean reward of the group
    successes: int = 0  # correct rollouts in the group
    group_size: int = 0


class Edit(BaseModel):
    op: Literal["ADD", "UPDATE", "DELETE", "SUPPORT"]
    id: str | None = None
    content: str | None = None
    sources: list[str] = Field(default_factory=list)
    merged: int = 1  # how many proposals this edit stands for
    advantage: float = 0.0  # the highest group advantage among them
    rare_success: bool = False  # learned from a group where success was rare (see controls.is_rare_success)


class Rejection(BaseModel):
    op: str
    id: str | None
    content: str | None
    item_id: str
    reason: str


def same_text(a: str, b: str) -> bool:
    """Equal up to case, spacing and punctuation."""
    return _WORD.findall(a.lower()) == _WORD.findall(b.lower())


def _cap(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) if len(parts) > words else text.strip()


def reconcile(
    proposals: list[Proposal], library: Library, cfg: TFGRPOSpec, task_terms: frozenset[str] = frozenset()
) -> tuple[list[Edit], list[Rejection]]:
    """Turn all proposals of a step into a conflict-free list of edits against the library snapshot.
    `task_terms`: numbers and names of the task itself (`specifics.task_terms`), which a lesson may repeat."""
    active = {x.id: x for x in library.active()}
    rejected: list[Rejection] = []
    deletes: dict[str, Edit] = {}
    updates: dict[str, Edit] = {}
    adds: list[Edit] = []

    def reject(op: str, id_: str | None, content: str | None, item: str, reason: str) -> None:
        rejected.append(Rejection(op=op, id=id_, content=content, item_id=item, reason=reason))

    for p in sorted(proposals, key=lambda p: p.order):
        rare = p.group_size >= 4 and p.successes == 1  # see controls.is_rare_success
        for o in p.ops:
            content = (o.content or "").strip()
            if o.op == "NONE":
                continue
            if o.op in ("UPDATE", "DELETE") and (not o.id or o.id not in active):
                reject(o.op, o.id, content, p.item_id, f"unknown or retired lesson id {o.id!r}")
                continue
            if o.op in ("ADD", "UPDATE") and len(_WORD.findall(content.lower())) < 3:
                reject(
                    o.op, o.id, content, p.item_id, "empty content" if not content else "fewer than 3 words"
                )
                continue
            if o.op in ("ADD", "UPDATE") and talks_about_itself(content):
                reject(
                    o.op, o.id, content, p.item_id, "talks about the lesson or library, not about the task"
                )
                continue
            if o.op in ("ADD", "UPDATE") and (copied := copied_specifics(content, p.question, task_terms)):
                reject(o.op, o.id, content, p.item_id,
                       f"repeats its own question's {', '.join(map(repr, copied))}: a lesson must be general")  # fmt: skip
                continue
            content = _cap(content, cfg.word_cap)
            if o.op == "DELETE":
                assert o.id is not None
                deletes.setdefault(o.id, Edit(op="DELETE", id=o.id, sources=[])).sources.extend(p.sources)
            elif o.op == "UPDATE":
                assert o.id is not None
                if o.id in updates:
                    reject("UPDATE", o.id, content, p.item_id,
                           "superseded by an earlier UPDATE of the same lesson")  # fmt: skip
                else:
                    updates[o.id] = Edit(op="UPDATE", id=o.id, content=content, sources=list(p.sources),
                                         advantage=p.advantage, rare_success=rare)  # fmt: skip
            else:
                adds.append(Edit(op="ADD", content=content, sources=list(p.sources), advantage=p.advantage,
                                 rare_success=rare))  # fmt: skip

    for lid, u in list(updates.items()):
        if lid in deletes:
            reject("UPDATE", lid, u.content, "-", "DELETE of the same lesson wins over UPDATE")
            del updates[lid]

    kept: list[Edit] = []
    for a in adds:
        assert a.content is not None
        twin = next((m for m in kept if m.op == "ADD" and same_text(a.content, m.content or "")), None)
        if twin is not None:
            fold(twin, a)
            continue
        dup = next((x for x in active.values() if x.id not in deletes and same_text(a.content, x.text)), None)
        if dup is not None:
            kept.append(Edit(op="SUPPORT", id=dup.id, content=a.content, sources=a.sources))
            continue
        kept.append(a)
    for r in rejected:
        log.info("rejected %s %s: %s", r.op, r.id or "", r.reason)
    return [*deletes.values(), *updates.values(), *kept], rejected


def fold(into: Edit, other: Edit) -> None:
    """`other` says what `into` says: one edit stands for both proposals."""
    into.sources = sorted({*into.sources, *other.sources})
    into.merged += other.merged
    into.advantage = max(into.advantage, other.advantage)
    into.rare_success = into.rare_success or other.rare_success


def apply_edits(edits: list[Edit], library: Library, *, step: int) -> dict[str, int]:
    """Apply reconciled edits; returns how many of each kind took effect."""
    counts = {"ADD": 0, "UPDATE": 0, "DELETE": 0, "SUPPORT": 0}
    for e in edits:
        if e.op == "DELETE" and e.id:
            library.delete(e.id, step=step)
        elif e.op == "UPDATE" and e.id and e.content:
            library.update(e.id, e.content, step=step, sources=e.sources)
        elif e.op == "SUPPORT" and e.id:
            library.support(e.id, e.sources)
        elif e.op == "ADD" and e.content:
            library.add(
                e.content, step=step, sources=e.sources, advantage=e.advantage, rare_success=e.rare_success
            )
        counts[e.op] += 1
    return counts
