"""What a Training-Free GRPO step logs beyond its edits: rollout diversity and truncation, library size and
diversity, token entropy under a local model, and each new lesson's KL sharpening."""

from __future__ import annotations

import asyncio
from typing import Any

from memrl.algos.tfgrpo.learning import Learning, library_memory
from memrl.diversity.monitor import answer_key, group_diversity, library_diversity
from memrl.entropy.tracking import api_entropy_bounds, lesson_kl, token_entropy
from memrl.inject import (
    approx_tokens,
    policy_messages,
)
from memrl.memory.records import LessonRecord
from memrl.types import Item, Rollout

__all__ = ["rollout_metrics", "library_metrics", "entropy_metrics", "lesson_kl_metrics"]


def rollout_metrics(groups: list[list[Rollout]]) -> dict[str, float]:
    per = [
        [(" ".join((r.verdict.extracted or r.completion.text[-60:]).split()), answer_key(r.verdict.extracted, r.completion.text),
          r.verdict.reward, r.verdict.correct) for r in g]
        for g in groups
    ]  # fmt: skip
    n = max(1, sum(map(len, groups)))
    return {
        **group_diversity(per),
        "truncated_share": sum(r.completion.truncated for g in groups for r in g) / n,
    }


def library_metrics(lr: Learning) -> dict[str, float]:
    texts = lr.library.texts()
    div = library_diversity(lr.vectors.of(texts).tolist() if texts else [], lr.dcfg.redundancy_threshold)
    return {"lessons": len(texts), "library_words": sum(len(t.split()) for t in texts),
            "library_tokens": sum(approx_tokens(t) for t in texts), **div}  # fmt: skip


async def entropy_metrics(lr: Learning, groups: list[list[Rollout]]) -> dict[str, Any]:
    assert lr.ecfg is not None
    per_group = await asyncio.to_thread(token_entropy, lr.scorer, groups, lr.ecfg.aggregation)
    out: dict[str, Any] = {"token_entropy": sum(per_group) / len(per_group) if per_group else 0.0,
                           "token_entropy_groups": [round(x, 6) for x in per_group]}  # fmt: skip
    return out | (api_entropy_bounds([r for g in groups for r in g]) or {})


async def lesson_kl_metrics(
    lr: Learning, changed: list[LessonRecord], batch: list[Item], groups: list[list[Rollout]]
) -> dict[str, Any]:
    """Each new or rewritten lesson's KL sharpening on the first prompts of the batch."""
    if not changed:
        return {}
    spec, kls = lr.ctx.spec, []
    for lesson in changed:
        pairs = []
        for item, g in list(zip(batch, groups, strict=True))[: lr.ecfg.kl_prompts if lr.ecfg else 1]:
            others = [x for x in lr.lessons_for(item) if x.id != lesson.id]
            without = policy_messages(spec.prompt, item, library_memory(others))
            with_ = policy_messages(spec.prompt, item, library_memory([*others, lesson]))
            pairs.append((with_, without, g[0].completion.text))
        kl = await asyncio.to_thread(lesson_kl, lr.scorer, pairs)
        lr.library.lessons[lesson.id] = lesson.model_copy(
            update={"metadata": {**lesson.metadata, "kl_sharpening": round(kl, 6)}}
        )
        kls.append(kl)
    return {
        "lesson_kl_mean": sum(kls) / len(kls),
        "lesson_kl": {x.id: round(k, 6) for x, k in zip(changed, kls, strict=True)},
    }
