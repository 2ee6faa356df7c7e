"""Bounded library edits — the prompt-level analogue of clipping policy updates — and upkeep:

- protection: a lesson learned from a rare success (its group's best reward beat the group mean by at
  least `protect_advantage`) is never deleted, merged away or pruned;
- caps: at most `max_edits_per_step` edits a step, at most `max_rewrites` UPDATEs of one lesson;
- dedup: active lessons whose embeddings reach `dedup_threshold` merge into the older one (the store
  really changes; lineage records `merged-into`);
- pruning: retire lessons whose harmful count exceeds their helpful count by a margin, or that were not
  injected for a number of steps.
"""

from __future__ import annotations

from memrl.algos.curate import Edit, Rejection
from memrl.diversity.injection import LessonVectors
from memrl.library import Library
from memrl.memory.records import LessonRecord
from memrl.spec import DiversitySpec

__all__ = ["is_protected", "bound_edits", "dedup_merge", "prune"]


#: Cosine at which two lessons count as the same text (exact copies embed at 1.0).
SAME_TEXT = 0.98


def is_protected(lesson: LessonRecord, cfg: DiversitySpec) -> bool:
    if not cfg.enabled or cfg.protect_advantage is None:
        return False
    return float(lesson.metadata.get("advantage", 0.0)) >= cfg.protect_advantage


def bound_edits(
    edits: list[Edit], library: Library, cfg: DiversitySpec
) -> tuple[list[Edit], list[Rejection]]:
    if not cfg.enabled:
        return edits, []
    kept: list[Edit] = []
    rejected: list[Rejection] = []

    def reject(e: Edit, reason: str) -> None:
        rejected.append(Rejection(op=e.op, id=e.id, content=e.content, item_id="-", reason=reason))

    budget = cfg.max_edits_per_step
    for e in edits:
        lesson = library.get(e.id) if e.id else None
        if e.op == "DELETE" and lesson is not None and is_protected(lesson, cfg):
            reject(e, "protected: learned from a rare high-advantage success")
            continue
        if (
            e.op == "UPDATE"
            and lesson is not None
            and cfg.max_rewrites is not None
            and lesson.version > cfg.max_rewrites
        ):
            reject(e, f"rewrite cap: lesson already rewritten {lesson.version - 1} times")
            continue
        if e.op != "SUPPORT" and budget is not None:
            if budget <= 0:
                reject(e, f"edit cap of {cfg.max_edits_per_step} per step reached")
                continue
            budget -= 1
        kept.append(e)
    return kept, rejected


def dedup_merge(
    library: Library, vectors: LessonVectors, cfg: DiversitySpec, *, step: int
) -> list[tuple[str, str]]:
    """Merge near-duplicate active lessons; returns (merged, into) id pairs."""
    if not cfg.enabled or cfg.dedup_threshold is None:
        return []
    active = library.active()
    if len(active) < 2:
        return []
    x = vectors.of([a.text for a in active])
    sim = x @ x.T
    merged: list[tuple[str, str]] = []
    gone: set[int] = set()
    for j in range(len(active)):
        if j in gone:
            continue
        # a protected lesson (learned from a rare success) is kept apart from mere neighbours, but a copy of
        # an earlier lesson adds nothing: it merges like any other
        need = max(cfg.dedup_threshold, SAME_TEXT) if is_protected(active[j], cfg) else cfg.dedup_threshold
        for i in range(j):
            if i not in gone and sim[i, j] >= need:
                library.merge(active[j].id, active[i].id, step=step)
                merged.append((active[j].id, active[i].id))
                gone.add(j)
                break
    return merged


def prune(library: Library, cfg: DiversitySpec, *, step: int) -> list[str]:
    """Retire harmful or unused lessons (never protected ones); returns their ids."""
    if not cfg.enabled:
        return []
    retired = []
    for lesson in library.active():
        if is_protected(lesson, cfg):
            continue
        harmful = (
            cfg.prune_harmful_margin is not None
            and lesson.harmful - lesson.helpful > cfg.prune_harmful_margin
        )
        last = int(lesson.metadata.get("last_used_step", lesson.created_step))
        unused = cfg.prune_unused_steps is not None and step - last >= cfg.prune_unused_steps
        if harmful or unused:
            library.delete(lesson.id, step=step)
            retired.append(lesson.id)
    return retired
