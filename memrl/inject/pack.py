"""What memory goes into one prompt: lessons and cases packed into a token budget, rendered as in learning.

Tokens are estimated (`approx_tokens`), not counted with a tokenizer: memrl talks to many models and loads
none of their tokenizers. Pass an exact counter (e.g. your model's tokenizer) as `count` where it matters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from pydantic import BaseModel, Field

from memrl.inject.render import memory_block, render_case
from memrl.memory.records import CaseRecord, LessonRecord
from memrl.tokens import approx_tokens

__all__ = ["Injection", "approx_tokens", "pack"]


_WORD = re.compile(r"[a-z0-9]+")


def _overlap(a: str, b: str) -> float:
    """Word overlap (Jaccard) of two texts: the relevance `pack` ranks by when no embedder chose."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


class Injection(BaseModel):
    """What `augment` puts into the prompt for one query."""

    text: str
    lessons: list[str] = Field(default_factory=list, description="Ids of the lessons shown.")
    cases: list[str] = Field(default_factory=list, description="Ids of the cases shown.")
    skills: list[str] = Field(
        default_factory=list, description="Ids of the verified skills shown (code: MemoryPolicy.preload)."
    )
    tokens: int = 0


@lru_cache(maxsize=512)
def _render(lessons: tuple[str, ...], cases: tuple[str, ...]) -> str:
    return memory_block(list(lessons), list(cases))


def pack(
    query: str,
    lessons: list[LessonRecord],
    cases: list[CaseRecord],
    *,
    budget: int,
    max_lessons: int | None = None,
    count: Callable[[str], int] = approx_tokens,
    render: Callable[[CaseRecord], str] = render_case,
) -> Injection:
    """The memory block for `query` within `budget` tokens.

    When everything fits, every lesson in library order (exactly what learning showed) and every case.
    Otherwise lessons are taken most related to the query first (word overlap; helpfulness breaks ties)
    while they fit, and are shown in library order; then cases, best first, while they fit. Each item is
    costed on its own (plus the headers, once), and the rendered block is checked and trimmed at the end.
    """
    cap = len(lessons) if max_lessons is None else max_lessons
    case_texts = [render(c) for c in cases]
    every = _render(tuple(x.text for x in lessons), tuple(case_texts))
    if len(lessons) <= cap and count(every) <= budget:
        return Injection(
            text=every, lessons=[x.id for x in lessons], cases=[c.id for c in cases], tokens=count(every)
        )
    ranked = sorted(
        range(len(lessons)),
        key=lambda i: -(_overlap(query, lessons[i].text) + 0.01 * _helpfulness(lessons[i])),
    )[:cap]
    lesson_head = count(_render(("x",), ())) - count("x")  # the lessons header and a bullet
    case_head = count(_render(("x",), ("y",))) - count(_render(("x",), ())) - count("y")
    used = 0
    picked_lessons: list[int] = []  # in rank order: trimming drops the least related first
    picked_cases: list[int] = []
    for i in ranked:
        cost = count(lessons[i].text) + (lesson_head if not picked_lessons else 1)
        if used + cost <= budget:
            picked_lessons.append(i)
            used += cost
    for j, text in enumerate(case_texts):
        cost = count(text) + (case_head if not picked_cases else 1)
        if used + cost <= budget:
            picked_cases.append(j)
            used += cost
    while True:  # the estimate is per item; the rendered block is what must fit
        shown = sorted(picked_lessons)
        text = _render(tuple(lessons[i].text for i in shown), tuple(case_texts[j] for j in picked_cases))
        tokens = count(text)
        if tokens <= budget or not (picked_lessons or picked_cases):
            break
        (picked_cases or picked_lessons).pop()
    return Injection(
        text=text,
        lessons=[lessons[i].id for i in shown],
        cases=[cases[j].id for j in picked_cases],
        tokens=tokens,
    )


def _helpfulness(lesson: LessonRecord) -> float:
    return (lesson.helpful - lesson.harmful) / (1 + lesson.uses)
