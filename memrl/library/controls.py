"""Bounded library edits — the prompt-level analogue of clipping policy updates — and upkeep:

- protection: a lesson learned from a rare success (exactly one correct rollout in a group of at least four)
  is never deleted by the learner's judgement, merged into a neighbour or pruned as unused; measured harm
  (below) still retires it; every other lesson can leave by any of these;
- caps: at most `max_edits_per_step` edits a step, at most `max_rewrites` UPDATEs of one lesson, and the
  library size cap, applied after the other bounds so a refused DELETE cannot let the library outgrow it;
- dedup: active lessons whose embeddings reach `dedup_threshold` (copies, by default) merge into the older one
  (lineage records `merged-into`); near but unequal texts are the learner's call, made when they are proposed;
- pruning: retire a lesson whose paired evidence shows harm — in groups where some rollouts were shown it and
  others were not, the ones shown it did worse `prune_harmful_margin` more times than better, and a sign
  test puts that below `prune_harmful_p` — or, when asked, one not injected for a number of steps.
"""

from __future__ import annotations

import math

from memrl.library.core import Library
from memrl.library.edits import Edit, Rejection
from memrl.memory.records import LessonRecord
from memrl.memory.vectors import LessonVectors
from memrl.spec import DiversitySpec

__all__ = [
    "RARE_SUCCESS_GROUP",
    "SAME_TEXT",
    "is_rare_success",
    "is_protected",
    "bound_edits",
    "cap_adds",
    "dedup_merge",
    "prune",
    "sign_test",
]


#: Cosine at which two lessons count as the same text (exact copies embed at 1.0).
SAME_TEXT = 0.98
#: The smallest group in which one success out of all counts as rare.
RARE_SUCCESS_GROUP = 4


def is_rare_success(successes: int, group_size: int) -> bool:
    """Exactly one correct rollout in a group of at least four: the kind of success a lesson must keep."""
    return group_size >= RARE_SUCCESS_GROUP and successes == 1


def is_protected(lesson: LessonRecord, cfg: DiversitySpec) -> bool:
    return cfg.enabled and cfg.protect_rare_success and bool(lesson.metadata.get("rare_success", False))


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
            reject(e, "protected: learned from a rare success (one correct rollout in its group)")
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


def cap_adds(edits: list[Edit], library: Library, max_lessons: int) -> tuple[list[Edit], list[Rejection]]:
    """Drop ADDs beyond the size cap, counting only the DELETEs that will really happen."""
    deletes = sum(e.op == "DELETE" for e in edits)
    room = max_lessons - (len(library) - deletes)
    kept: list[Edit] = []
    rejected: list[Rejection] = []
    for e in edits:
        if e.op == "ADD":
            if room <= 0:
                rejected.append(Rejection(op="ADD", id=None, content=e.content, item_id="-",
                                          reason=f"library is at its cap of {max_lessons} lessons"))  # fmt: skip
                continue
            room -= 1
        kept.append(e)
    return kept, rejected


def dedup_merge(
    library: Library, vectors: LessonVectors | None, cfg: DiversitySpec, *, step: int
) -> list[tuple[str, str]]:
    """Merge near-duplicate active lessons; returns (merged, into) id pairs."""
    if not cfg.enabled or cfg.dedup_threshold is None or vectors is None:
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
        # a protected lesson is kept apart from mere neighbours, but a copy of an earlier lesson adds nothing
        need = max(cfg.dedup_threshold, SAME_TEXT) if is_protected(active[j], cfg) else cfg.dedup_threshold
        for i in range(j):
            if i not in gone and sim[i, j] >= need:
                library.merge(active[j].id, active[i].id, step=step)
                merged.append((active[j].id, active[i].id))
                gone.add(j)
                break
    return merged


def sign_test(losses: int, wins: int) -> float:
    """One-sided p of at least `losses` losses among `losses + wins` fair coin flips."""
    n = losses + wins
    return sum(math.comb(n, k) for k in range(losses, n + 1)) / 2**n if n else 1.0


def prune(library: Library, cfg: DiversitySpec, *, step: int) -> list[str]:
    """Retire lessons the paired evidence shows harmful (protected or not: evidence, not an opinion), or
    unused ones (never protected ones)."""
    if not cfg.enabled:
        return []
    retired = []
    for lesson in library.active():
        harmful = (
            cfg.prune_harmful_margin is not None
            and lesson.losses - lesson.wins > cfg.prune_harmful_margin
            and sign_test(lesson.losses, lesson.wins) < cfg.prune_harmful_p
        )
        last = int(lesson.metadata.get("last_used_step", lesson.created_step))
        unused = (
            cfg.prune_unused_steps is not None
            and step - last >= cfg.prune_unused_steps
            and not is_protected(lesson, cfg)
        )
        if harmful or unused:
            library.delete(lesson.id, step=step)
            retired.append(lesson.id)
    return retired
