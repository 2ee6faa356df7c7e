"""The one curation path: every update of a lesson library — `memrl run` with `algorithm: tfgrpo` and
`MemoryPolicy.learn()` alike — goes reconcile → judge near-equal texts → bound edits → cap → apply →
dedup/merge → prune, here.

Which groups reach the learner is decided here too (`has_advantage`): a group whose rewards all agree holds
no contrast to learn from, whatever the reward; any other group does (an all-0.5 group is skipped too).

Near-equal texts: a new lesson is compared with the active lessons and the step's other new lessons by the
run's embedder. Equal texts fold at once; pairs at or above `tfgrpo.reconcile_similarity` cosine go, all in
one learner call, to the judgement "same or different" (the batch reconcile of Training-Free GRPO); "same"
folds the new lesson into the other (SUPPORT, or one ADD for two proposals), anything else — "different", no
learner, an unusable answer — keeps both. Templated lessons that differ only in their condition survive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from memrl.library.controls import SAME_TEXT, bound_edits, cap_adds, dedup_merge, prune
from memrl.library.core import Library
from memrl.library.edits import Edit, Proposal, Rejection, apply_edits, fold, reconcile, same_text
from memrl.llm.base import LLM
from memrl.memory.vectors import LessonVectors
from memrl.metrics import has_advantage
from memrl.prompts import load_prompt
from memrl.spec import DiversitySpec, TFGRPOSpec
from memrl.structured import ask_structured

__all__ = ["CurateResult", "curate", "has_advantage", "judge_similar"]

log = logging.getLogger(__name__)


@dataclass
class CurateResult:
    """What one curation did to the library."""

    ops: dict[str, int]
    rejected: list[Rejection] = field(default_factory=list)
    judged_pairs: int = 0
    judged_same: int = 0
    merged: list[tuple[str, str]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


class _Verdicts(BaseModel):
    verdicts: list[Literal["same", "different"]]


async def curate(
    proposals: list[Proposal],
    library: Library,
    *,
    tfgrpo: TFGRPOSpec,
    diversity: DiversitySpec,
    vectors: LessonVectors | None,
    learner: LLM | None,
    step: int,
    salt: str,
    task_terms: frozenset[str] = frozenset(),
) -> CurateResult:
    """Apply one step's proposals to `library` (in place) through every rule; the caller commits.
    `task_terms`: the task's own numbers and names, from its training questions (`specifics.task_terms`)."""
    edits, rejected = reconcile(proposals, library, tfgrpo, task_terms)
    edits, pairs, same = await judge_similar(
        edits, library, vectors, learner, tfgrpo, salt=f"{salt}:reconcile"
    )
    edits, bounded = bound_edits(edits, library, diversity)
    edits, capped = cap_adds(edits, library, tfgrpo.max_lessons)
    ops = apply_edits(edits, library, step=step)
    merged = dedup_merge(library, vectors, diversity, step=step)
    pruned = prune(library, diversity, step=step)
    out = CurateResult(ops=ops, rejected=[*rejected, *bounded, *capped], judged_pairs=pairs, judged_same=same,
                       merged=merged, pruned=pruned)  # fmt: skip
    for r in [*bounded, *capped]:
        log.info("rejected %s %s: %s", r.op, r.id or "", r.reason)
    return out


async def judge_similar(
    edits: list[Edit],
    library: Library,
    vectors: LessonVectors | None,
    learner: LLM | None,
    cfg: TFGRPOSpec,
    *,
    salt: str,
) -> tuple[list[Edit], int, int]:
    """Fold new lessons that say what a kept one says. Returns the edits, pairs judged and pairs found same."""
    adds = [e for e in edits if e.op == "ADD"]
    if not adds or vectors is None:
        return edits, 0, 0
    deleted = {e.id for e in edits if e.op == "DELETE"}
    kept_lessons = [x for x in library.active() if x.id not in deleted]
    texts = [x.text for x in kept_lessons] + [e.content or "" for e in adds]
    v = vectors.of(texts)
    sim = v @ v.T
    n_old = len(kept_lessons)
    # candidates of ADD j: every active lesson and every earlier ADD above the threshold, most similar first
    candidates: dict[int, list[int]] = {}
    ask: list[tuple[int, int]] = []
    for j in range(len(adds)):
        row = n_old + j
        near = [i for i in range(row) if sim[row, i] >= cfg.reconcile_similarity]
        near.sort(key=lambda i: -sim[row, i])
        candidates[j] = near
        ask += [(row, i) for i in near if sim[row, i] < SAME_TEXT and not same_text(texts[row], texts[i])]
    verdict: dict[tuple[int, int], bool] = {}
    if ask and learner is not None:
        msgs = load_prompt("tfgrpo_reconcile").messages(
            pairs=[{"a": texts[i], "b": texts[r]} for r, i in ask]
        )
        schema = {"type": "object", "required": ["verdicts"], "properties": {"verdicts": {
            "type": "array", "minItems": len(ask), "maxItems": len(ask),
            "items": {"type": "string", "enum": ["same", "different"]}}}}  # fmt: skip
        out = await ask_structured(learner, msgs, _Verdicts, schema=schema, phase="learner", salt=salt,
                                   temperature=0.0, max_tokens=16 + 6 * len(ask))  # fmt: skip
        if out is not None and len(out.verdicts) == len(ask):
            verdict = {pair: v == "same" for pair, v in zip(ask, out.verdicts, strict=True)}
        else:
            log.warning("reconcile call gave no usable verdicts for %d pairs: all lessons kept", len(ask))
    result = [e for e in edits if e.op != "ADD"]
    standing: dict[int, Edit] = {}  # row of a kept ADD -> its edit
    for j, a in enumerate(adds):
        row = n_old + j
        target = next(
            (i for i in candidates[j]
             if (i < n_old or i in standing)
             and (sim[row, i] >= SAME_TEXT or same_text(texts[row], texts[i]) or verdict.get((row, i), False))),
            None,
        )  # fmt: skip
        if target is None:
            standing[row] = a
            result.append(a)
        elif target < n_old:
            result.append(
                Edit(op="SUPPORT", id=kept_lessons[target].id, content=a.content, sources=a.sources)
            )
        else:
            fold(standing[target], a)
    return result, len(ask), sum(verdict.values())
