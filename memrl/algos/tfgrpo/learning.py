"""What a Training-Free GRPO rollout sees and how a group is sampled: the run's library, learner, lesson
vectors and worked cases (`Learning`), the memory block of one prompt (lessons, then cases, in one budget;
through `memrl.inject`), and `rollout_group` (G judged rollouts of one query, each with its own lesson subset
when exploring)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from memrl.act import Actor, Preload
from memrl.algos.tfgrpo.cases import NAMESPACE, SolvedCases
from memrl.cases import Selection
from memrl.context import RunContext
from memrl.entropy.tracking import open_scorer
from memrl.inject import (
    LessonVectors,
    explore_subset,
    pack,
    policy_messages,
    render_solved,
    select_lessons,
)
from memrl.library import Library
from memrl.library.specifics import task_terms
from memrl.llm.base import LLM, Request
from memrl.memory.records import LessonRecord
from memrl.skills import Skill, SkillLibrary
from memrl.spec import TFGRPOSpec
from memrl.types import Item, Message, Rollout

__all__ = ["Learning", "rollout_group", "library_memory", "CASES_BUDGET", "NO_BUDGET"]

log = logging.getLogger(__name__)


#: The memory budget once worked cases are on and `tfgrpo.memory_tokens` is not set.
CASES_BUDGET = 1200
#: No overall cap (lessons alone: `diversity.max_memory_tokens` bounds them).
NO_BUDGET = 10**9


def library_memory(lessons: list[LessonRecord]) -> str:
    """The block for these lessons alone, all of them (for the KL sharpening of one lesson)."""
    return pack("", lessons, [], budget=NO_BUDGET).text


class Learning:
    """What a step needs besides the context: the library, the learner, the lesson vectors and the knobs
    the collapse alarm may turn (rollout temperature, per-rollout exploration)."""

    def __init__(
        self, ctx: RunContext, library: Library, learner: LLM, vectors: LessonVectors, state: dict[str, Any]
    ) -> None:
        self.ctx, self.library, self.learner, self.vectors = ctx, library, learner, vectors
        self.cfg = ctx.spec.tfgrpo or TFGRPOSpec()
        self.dcfg = ctx.spec.diversity
        self.temperature = float(state.get("temperature", self.cfg.temperature))
        self.explore = bool(state.get("explore", self.dcfg.enabled and self.dcfg.explore_subsets))
        self.ecfg = ctx.spec.entropy
        self.gate_items: list[Item] = []  # the no-harm gate's validation items (carved from training)
        # numbers and names most training questions share: a lesson may repeat them (`specifics.task_terms`)
        self.task_terms = task_terms(it.question for it in ctx.split.train)
        self._scorer: Any = None
        self.use_lessons = self.cfg.experiences in ("lessons", "both")
        self.cases: SolvedCases | None = None
        self.actor = Actor(ctx.llm, ctx.spec.act)
        self.skills: SkillLibrary | None = None
        if self.cfg.skills.enabled:
            self.skills = SkillLibrary(
                ctx.run.file("skills"), self.cfg.skills, held_out=ctx.split.test, vectors=vectors
            )
        if self.cfg.experiences in ("cases", "both"):
            self.cases = SolvedCases(
                ctx.run.path, self.cfg.cases, held_out=ctx.split.test, case_chars=self.cfg.case_chars,
                memory=ctx.open_memory(ctx.run.file("memory"), namespace=NAMESPACE, embedder=self.dcfg.embedder),
            )  # fmt: skip

    @property
    def scorer(self) -> Any:
        """The local model that scores entropy (loaded on first use; only with an `entropy:` section)."""
        if self._scorer is None and self.ecfg is not None:
            self._scorer = open_scorer(self.ecfg.model, self.ecfg.n_ctx)
        return self._scorer

    def request(self, messages: list[Message]) -> Request:
        cfg, spec = self.cfg, self.ctx.spec
        topk = self.ecfg.api_top_logprobs if self.ecfg else None
        return Request.of(
            messages, temperature=self.temperature, max_tokens=cfg.max_tokens or spec.eval.max_tokens,
            stop=spec.eval.stop, logprobs=bool(topk), top_logprobs=topk,
        )  # fmt: skip

    def lessons_for(self, item: Item, library: Library | None = None) -> list[LessonRecord]:
        if not self.use_lessons:
            return []
        lib = self.library if library is None else library  # an empty Library is falsy
        return select_lessons(lib.active(), item.question, self.vectors, self.dcfg)

    def memory(self, item: Item, lessons: list[LessonRecord], cases: Selection | None = None) -> str:
        """The memory block for one prompt: the chosen lessons, then cases, in one budget (no cap for lessons
        alone unless `tfgrpo.memory_tokens` sets one: the lesson budget is `diversity.max_memory_tokens`)."""
        records = [h.record for h in cases.hits] if cases else []
        budget = self.cfg.memory_tokens or (CASES_BUDGET if self.cases is not None else NO_BUDGET)
        return pack(item.question, lessons, records, budget=budget, render=render_solved).text

    def eval_memory(self, item: Item, library: Library | None = None) -> str:
        """The memory a held-out (or validation) item gets: greedy case ranking, lessons of `library`, then
        the trusted skills."""
        cases = self.cases.select(item, f"eval:{item.id}", explore=False) if self.cases else None
        return _join(
            self.memory(item, self.lessons_for(item, library), cases), self.skill_text(self.eval_skills(item))
        )

    def eval_skills(self, item: Item) -> list[Skill]:
        return self.skills.select(item, trusted_only=True) if self.skills else []

    def eval_preload(self, item: Item) -> Preload:
        """The code a held-out (or validation) item's sandbox starts with: its trusted skills."""
        return self.skills.preload(self.eval_skills(item)) if self.skills else Preload()

    def skill_text(self, skills: list[Skill]) -> str:
        return self.skills.render(skills) if self.skills else ""


def _join(*blocks: str) -> str:
    return "\n\n".join(b for b in blocks if b)


async def rollout_group(
    lr: Learning, item: Item, *, step: int
) -> tuple[list[Rollout], list[list[str]], list[Selection], list[Skill]]:
    """G judged rollouts of one query, the lesson ids each rollout was shown, the cases it was shown and the
    skills all of them were shown and had preloaded (trusted ones and candidates from other items)."""
    ctx, cfg = lr.ctx, lr.cfg
    chosen = lr.lessons_for(item)
    skills = lr.skills.select(item, trusted_only=False) if lr.skills else []
    skill_text = lr.skill_text(skills)
    preload = lr.skills.preload(skills) if lr.skills else Preload()
    salt = f"rollout:{step}:{item.id}"
    G = cfg.group_size
    per_rollout_cases = lr.cases is not None and cfg.cases.mode == "q" and cfg.cases.exploration != "none"
    if lr.cases is None:
        cases = [Selection()] * G
    elif per_rollout_cases:  # exploration: each rollout may see other cases, so Q learns from the contrast
        cases = [lr.cases.select(item, f"{salt}:{i}", explore=True) for i in range(G)]
    else:
        cases = [lr.cases.select(item, salt, explore=True)] * G
    explore_lessons = lr.explore and bool(chosen)
    shown = (
        [explore_subset(chosen, i, salt, lr.dcfg.subset_fraction) for i in range(G)]
        if explore_lessons
        else [chosen] * G
    )
    if explore_lessons or per_rollout_cases:
        msgs = [
            policy_messages(ctx.spec.prompt, item, _join(lr.memory(item, sub, c), skill_text))
            for sub, c in zip(shown, cases, strict=True)
        ]
    else:
        msgs = [
            policy_messages(ctx.spec.prompt, item, _join(lr.memory(item, chosen, cases[0]), skill_text))
        ] * G
    reqs = [lr.request(m) for m in msgs]
    if all(r == reqs[0] for r in reqs):  # one group request: identical groups share it through the cache
        samples = await lr.actor.answer(reqs[0], n=G, phase="rollout", salt=salt, preload=preload)
    else:
        outs = await asyncio.gather(
            *(
                lr.actor.answer(r, phase="rollout", salt=f"{salt}:{i}", preload=preload)
                for i, r in enumerate(reqs)
            )
        )
        samples = [o[0] for o in outs]
    verdicts = await asyncio.gather(*(ctx.verifier.verify(item, c.text) for c in samples))
    rollouts = [
        Rollout(item_id=item.id, sample=i, messages=m, completion=c, verdict=v)
        for i, (m, c, v) in enumerate(zip(msgs, samples, verdicts, strict=True))
    ]
    return rollouts, [[x.id for x in sub] for sub in shown], cases, skills
