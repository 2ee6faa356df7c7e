"""Reconcile every proposal of a step in one pass, then apply the result to the library in code.

Rules, in order: an operation naming an unknown or retired id, or an ADD/UPDATE without text, is rejected
with a logged reason; DELETE beats UPDATE on the same lesson; of several UPDATEs of one lesson the first
(in batch order) wins; texts over the word cap are cut; similar ADDs merge into one (their sources
joined); an ADD that repeats an existing lesson becomes support for that lesson; ADDs beyond the library
cap are rejected.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from pydantic import BaseModel, Field

from memrl.algos.advantage import Proposal
from memrl.library import Library
from memrl.spec import TFGRPOSpec

__all__ = ["Edit", "Rejection", "reconcile", "apply_edits", "jaccard"]

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+")


class Edit(BaseModel):
    op: Literal["ADD", "UPDATE", "DELETE", "SUPPORT"]
    id: str | None = None
    content: str | None = None
    sources: list[str] = Field(default_factory=list)
    merged: int = 1  # how many proposals this edit stands for
    advantage: float = 0.0  # the highest group advantage among them


class Rejection(BaseModel):
    op: str
    id: str | None
    content: str | None
    item_id: str
    reason: str


def jaccard(a: str, b: str) -> float:
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _cap(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) if len(parts) > words else text.strip()


def reconcile(
    proposals: list[Proposal], library: Library, cfg: TFGRPOSpec
) -> tuple[list[Edit], list[Rejection]]:
    """Turn all proposals of a step into a conflict-free list of edits against the library snapshot."""
    active = {x.id: x for x in library.active()}
    rejected: list[Rejection] = []
    deletes: dict[str, Edit] = {}
    updates: dict[str, Edit] = {}
    adds: list[Edit] = []

    def reject(op: str, id_: str | None, content: str | None, item: str, reason: str) -> None:
        rejected.append(Rejection(op=op, id=id_, content=content, item_id=item, reason=reason))

    for p in sorted(proposals, key=lambda p: p.order):
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
            content = _cap(content, cfg.word_cap)
            if o.op == "DELETE":
                assert o.id is not None
                deletes.setdefault(o.id, Edit(op="DELETE", id=o.id, sources=[])).sources.extend(p.sources)
            elif o.op == "UPDATE":
                assert o.id is not None
                if o.id in updates:
                    reject(
                        "UPDATE",
                        o.id,
                        content,
                        p.item_id,
                        "superseded by an earlier UPDATE of the same lesson",
                    )
                else:
                    updates[o.id] = Edit(
                        op="UPDATE", id=o.id, content=content, sources=list(p.sources), advantage=p.advantage
                    )
            else:
                adds.append(Edit(op="ADD", content=content, sources=list(p.sources), advantage=p.advantage))

    for lid, u in list(updates.items()):
        if lid in deletes:
            reject("UPDATE", lid, u.content, "-", "DELETE of the same lesson wins over UPDATE")
            del updates[lid]

    merged_adds: list[Edit] = []
    for a in adds:
        assert a.content is not None
        twin = next(
            (m for m in merged_adds if jaccard(a.content, m.content or "") >= cfg.merge_threshold), None
        )
        if twin is not None:
            twin.sources = sorted({*twin.sources, *a.sources})
            twin.merged += 1
            twin.advantage = max(twin.advantage, a.advantage)
            continue
        dup = next(
            (
                x
                for x in active.values()
                if x.id not in deletes and jaccard(a.content, x.text) >= cfg.merge_threshold
            ),
            None,
        )
        if dup is not None:
            merged_adds.append(Edit(op="SUPPORT", id=dup.id, content=a.content, sources=a.sources))
            continue
        merged_adds.append(a)

    room = cfg.max_lessons - (len(active) - len(deletes))
    edits: list[Edit] = [*deletes.values(), *updates.values()]
    for a in merged_adds:
        if a.op == "ADD":
            if room <= 0:
                reject("ADD", None, a.content, "-", f"library is at its cap of {cfg.max_lessons} lessons")
                continue
            room -= 1
        edits.append(a)
    for r in rejected:
        log.info("rejected %s %s: %s", r.op, r.id or "", r.reason)
    return edits, rejected


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
            library.add(e.content, step=step, sources=e.sources, advantage=e.advantage)
        counts[e.op] += 1
    return counts
