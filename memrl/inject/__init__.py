"""The one injection path: how learned memory reaches a prompt, the same for rollouts, evaluation,
`MemoryPolicy.augment` and the SDK wrappers.

    select  which lessons, in what order (relevance, MMR or greedy DPP, a token budget; per-rollout subsets)
    pack    lessons and cases into one token budget (`Injection`: the text and the ids shown)
    render  how the block reads (`memory_block`, `render_case`, `render_solved`)
    place   where it goes (`policy_messages` for an item; `inject` for an app's chat messages)

`build_memory` runs select → pack for one query; `memrl.algos.tfgrpo` splits the two steps only to give
each rollout of a group its own subset.
"""

from __future__ import annotations

from collections.abc import Callable

from memrl.inject.pack import Injection, pack
from memrl.inject.place import Placement, inject, policy_messages, query_text
from memrl.inject.render import memory_block, render_case, render_solved
from memrl.inject.select import LessonVectors, explore_subset, select_lessons
from memrl.memory.records import CaseRecord, LessonRecord
from memrl.spec import DiversitySpec
from memrl.tokens import approx_tokens

__all__ = [
    "Injection",
    "LessonVectors",
    "Placement",
    "approx_tokens",
    "build_memory",
    "explore_subset",
    "inject",
    "memory_block",
    "pack",
    "policy_messages",
    "query_text",
    "render_case",
    "render_solved",
    "select_lessons",
]


def build_memory(
    query: str,
    lessons: list[LessonRecord],
    cases: list[CaseRecord],
    *,
    diversity: DiversitySpec,
    vectors: LessonVectors | None,
    budget: int,
    max_lessons: int | None = None,
    count: Callable[[str], int] = approx_tokens,
    render: Callable[[CaseRecord], str] = render_case,
) -> Injection:
    """The memory for one query: lessons chosen as in learning (`diversity`: relevance, MMR/DPP, the lesson
    budget), then lessons and cases packed into `budget` tokens and rendered."""
    chosen = select_lessons(lessons, query, vectors, diversity)
    return pack(query, chosen, cases, budget=budget, max_lessons=max_lessons, count=count, render=render)
