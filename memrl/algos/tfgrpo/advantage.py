"""Semantic advantage (Training-Free GRPO's learner): summarise each rollout of a mixed group, compare the
summaries with their rewards to extract at most N lessons, and propose library edits for the query."""

from __future__ import annotations

import asyncio
import logging
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from memrl.act import transcript
from memrl.library.edits import Op, Proposal
from memrl.llm.base import LLM, Request
from memrl.memory.records import LessonRecord
from memrl.prompts import load_prompt
from memrl.spec import TFGRPOSpec
from memrl.structured import ask_structured
from memrl.types import Item, Rollout

log = logging.getLogger(__name__)

__all__ = [
    "Op",
    "Proposal",
    "summarize",
    "extract_lessons",
    "propose_ops",
    "learn_from_group",
    "hide_reference",
]


class _Ops(BaseModel):
    operations: list[Op]  # required: an answer without it is malformed, not "no operations"


class _Lessons(BaseModel):
    lessons: list[str]  # required, likewise


def _text(cfg: TFGRPOSpec) -> dict[str, Any]:
    return {"type": "string", "pattern": cfg.lesson_pattern} if cfg.lesson_pattern else {"type": "string"}


def _lessons_schema(cfg: TFGRPOSpec) -> dict[str, Any]:
    items = {"type": "array", "items": _text(cfg), "minItems": 1, "maxItems": cfg.lessons_per_group}
    return {"type": "object", "properties": {"lessons": items}, "required": ["lessons"]}


def _ops_schema(cfg: TFGRPOSpec, ids: list[str]) -> dict[str, Any]:
    # Each kind has its own required fields (with an optional id, small models always leave it out), and
    # ids are limited to the library's own where the provider enforces schemas.
    text = _text(cfg)
    ident = {"type": "string", "enum": ids}
    kinds = [
        {"type": "object", "properties": {"op": {"const": "ADD"}, "content": text}, "required": ["op", "content"]},
        {"type": "object", "properties": {"op": {"const": "UPDATE"}, "id": ident, "content": text},
         "required": ["op", "id", "content"]},
        {"type": "object", "properties": {"op": {"const": "DELETE"}, "id": ident}, "required": ["op", "id"]},
        {"type": "object", "properties": {"op": {"const": "NONE"}}, "required": ["op"]},
    ]  # fmt: skip
    if not ids:
        kinds = [kinds[0], kinds[3]]
    return {
        "type": "object",
        "properties": {
            "operations": {"type": "array", "items": {"anyOf": kinds}, "maxItems": cfg.ops_per_query}
        },
        "required": ["operations"],
    }


_WORDS = re.compile(r"[a-z0-9]+")


def echoes_instructions(text: str, prompt: str) -> bool:
    """Did the learner copy a piece of its own instructions (a format example such as "<the new lesson, in
    full>") instead of writing a lesson? Small models do; such a text is dropped, with a log line."""
    words = " ".join(_WORDS.findall(text.lower()))
    return not words or f" {words} " in _padded_words(prompt)


@lru_cache(maxsize=64)
def _padded_words(prompt: str) -> str:
    """`prompt`'s lowercase words, space-joined and space-padded (the learner's few fixed prompts recur)."""
    return f" {' '.join(_WORDS.findall(prompt.lower()))} "


def _instructions(name: str, **variables: Any) -> str:
    """A learner prompt with no problem, attempts, library or lessons in it: only its fixed text."""
    return "\n".join(m.content for m in load_prompt(name).messages(**variables))


@lru_cache(maxsize=64)
def _extract_instructions(max_lessons: int, word_cap: int, failure_lessons: bool = False) -> str:
    """The extract prompt's fixed text at these limits, rendered once."""
    return _instructions("tfgrpo_extract", question="", ground_truth=None, attempts=[], library=[],
                         max_lessons=max_lessons, word_cap=word_cap, failure_lessons=failure_lessons)  # fmt: skip


@lru_cache(maxsize=64)
def _propose_instructions(max_ops: int, word_cap: int) -> str:
    """The propose prompt's fixed text at these limits, rendered once."""
    return _instructions("tfgrpo_propose", library=[], lessons=[], max_ops=max_ops, word_cap=word_cap)


def hide_reference(text: str, reference: str | None) -> str:
    """`text` with the reference answer blanked out (a verdict's reason often quotes it: "expected 42")."""
    ref = (reference or "").strip()
    if not ref or not text:
        return text
    return re.sub(rf"(?<![\w.]){re.escape(ref)}(?![\w])", "[hidden]", text)


async def summarize(llm: LLM, item: Item, r: Rollout, cfg: TFGRPOSpec, salt: str) -> str:
    # without ground truth the learner sees right/wrong and the judge's reason, never the reference itself
    reason = r.verdict.reason if cfg.given_ground_truth else hide_reference(r.verdict.reason, item.answer)
    msgs = load_prompt("tfgrpo_summarize").messages(
        question=item.question, answer=transcript(r.completion), correct=r.verdict.correct,
        reason=reason, max_words=cfg.summary_words,
    )  # fmt: skip
    req = Request.of(msgs, temperature=cfg.learner_temperature, max_tokens=max(64, cfg.summary_words * 2))
    return (await llm.complete(req, phase="learner", salt=salt))[0].text.strip()


async def extract_lessons(
    llm: LLM,
    item: Item,
    rollouts: list[Rollout],
    summaries: list[str],
    library: list[str],
    cfg: TFGRPOSpec,
    salt: str,
) -> list[str]:
    msgs = load_prompt("tfgrpo_extract").messages(
        question=item.question,
        ground_truth=item.answer if cfg.given_ground_truth else None,
        attempts=[{"reward": round(r.verdict.reward, 2), "summary": s} for r, s in zip(rollouts, summaries, strict=True)],
        library=library, max_lessons=cfg.lessons_per_group, word_cap=cfg.word_cap,
        failure_lessons=cfg.failure_lessons,
    )  # fmt: skip
    out = await ask_structured(
        llm, msgs, _Lessons, schema=_lessons_schema(cfg), phase="learner", salt=salt,
        temperature=cfg.learner_temperature, max_tokens=cfg.learner_max_tokens,
    )  # fmt: skip
    fixed = _extract_instructions(cfg.lessons_per_group, cfg.word_cap, cfg.failure_lessons)
    lessons = [t.strip() for t in (out.lessons if out else []) if t.strip()]
    for t in [t for t in lessons if echoes_instructions(t, fixed)]:
        log.info("dropped a lesson that copies the instructions: %r", t)
    return [t for t in lessons if not echoes_instructions(t, fixed)][: cfg.lessons_per_group]


async def propose_ops(
    llm: LLM, lessons: list[str], library: list[LessonRecord], cfg: TFGRPOSpec, salt: str
) -> list[Op]:
    msgs = load_prompt("tfgrpo_propose").messages(
        library=[{"id": x.id, "text": x.text} for x in library], lessons=lessons,
        max_ops=cfg.ops_per_query, word_cap=cfg.word_cap,
    )  # fmt: skip
    out = await ask_structured(
        llm, msgs, _Ops, schema=_ops_schema(cfg, [x.id for x in library]), phase="learner", salt=salt,
        temperature=cfg.learner_temperature, max_tokens=cfg.learner_max_tokens,
    )  # fmt: skip
    fixed = _propose_instructions(cfg.ops_per_query, cfg.word_cap)
    ops = (out.operations if out else [])[: cfg.ops_per_query]
    for o in [o for o in ops if o.content and echoes_instructions(o.content, fixed)]:
        log.info("dropped a %s whose text copies the instructions: %r", o.op, o.content)
    return [o for o in ops if not (o.content and echoes_instructions(o.content, fixed))]


async def learn_from_group(
    llm: LLM,
    item: Item,
    order: int,
    rollouts: list[Rollout],
    library: list[LessonRecord],
    cfg: TFGRPOSpec,
    *,
    step: int,
    salt: str,
) -> Proposal:
    """The three learner calls for one group with an advantage, against a snapshot of the library."""
    summaries = await asyncio.gather(
        *(summarize(llm, item, r, cfg, f"{salt}:sum{r.sample}") for r in rollouts)
    )
    lessons = await extract_lessons(
        llm, item, rollouts, list(summaries), [x.text for x in library], cfg, f"{salt}:extract"
    )
    ops = await propose_ops(llm, lessons, library, cfg, f"{salt}:propose") if lessons else []
    sources = [f"s{step}/{r.item_id}#{r.sample}" for r in rollouts]
    rewards = [r.verdict.reward for r in rollouts]
    advantage = max(rewards) - sum(rewards) / len(rewards)
    return Proposal(
        item_id=item.id, order=order, ops=ops, sources=sources, question=item.question, lessons=lessons,
        advantage=advantage, successes=sum(r.verdict.correct for r in rollouts), group_size=len(rollouts),
    )  # fmt: skip
