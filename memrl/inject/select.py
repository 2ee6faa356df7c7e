"""Which lessons go into a prompt: relevance to the query, diversity (MMR or greedy DPP MAP), a token
budget, and, for exploration, a different subset for each rollout of a group."""

from __future__ import annotations

import random

import numpy as np

from memrl.diversity.select import greedy_dpp_map, mmr_select
from memrl.memory.records import LessonRecord
from memrl.memory.vectors import LessonVectors
from memrl.spec import DiversitySpec
from memrl.tokens import approx_tokens

__all__ = ["LessonVectors", "select_lessons", "explore_subset", "approx_tokens"]


def select_lessons(
    lessons: list[LessonRecord], query: str, vectors: LessonVectors | None, cfg: DiversitySpec
) -> list[LessonRecord]:
    """Lessons for one query within the token budget, chosen by relevance and diversity and shown in library
    order: when the library fits the budget every query gets the same block, a prefix the local server reuses
    (ranked per query, two items' blocks shared ~15 % of their text and evaluation re-read most of the memory
    for every item: 0.29x the wall time in library order, bench/bench_prompt_reuse.py)."""
    if not lessons:
        return []
    if cfg.injection == "all" or vectors is None or not cfg.enabled:
        order = list(range(len(lessons)))
    else:
        x = vectors.of([x.text for x in lessons])
        q = vectors.of([query])[0]
        rel = np.clip(x @ q, 1e-6, 1.0)
        sim = np.clip(x @ x.T, 0.0, 1.0)
        np.fill_diagonal(sim, 1.0)
        if cfg.injection == "mmr":
            order = mmr_select(sim, rel, k=len(lessons), lam=cfg.mmr_lambda)
        else:
            order = greedy_dpp_map(sim, rel, k=len(lessons))
            order += [i for i in np.argsort(-rel).tolist() if i not in order]  # past the DPP's stopping point
    if cfg.max_memory_tokens is None:
        return list(lessons)
    picked, used = [], 0
    for i in order:
        t = approx_tokens(lessons[i].text)
        if used + t <= cfg.max_memory_tokens:
            picked.append(i)
            used += t
    return [lessons[i] for i in sorted(picked)]


def explore_subset(
    lessons: list[LessonRecord], sample: int, seed: str, fraction: float
) -> list[LessonRecord]:
    """Rollout 0 of a group sees every selected lesson; each other rollout sees each lesson with chance
    `fraction` (seeded, in order), so even a single lesson is shown to some rollouts and not to others."""
    if sample == 0:
        return lessons
    rng = random.Random(f"{seed}:{sample}")
    return [x for x in lessons if rng.random() < fraction]
