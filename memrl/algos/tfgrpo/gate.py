"""The no-harm gate (`tfgrpo.gate`): a user can say "memrl will not make my agent worse on my validation data".

Before learning, a validation split is carved from the *training* items (seeded, never the held-out split) and
kept out of the rollouts. After every step that changed the memory a validation item gets (its lessons, worked
cases or trusted skills, or the lessons at all), the validation items are answered twice, with the memory from
before the step and with the memory the step left, with the same seeds (an unchanged prompt is replayed from
the cache), and compared item by item. A step whose memory scores lower is rolled back: its lesson edits are
undone (ids are not reused), its worked cases removed, its skills' trust put back as it was (their verification
records are kept: evidence, not edits); logged as a `gate_rejected` event and listed by `memrl library show`.
Its calls are counted under their own phase, `gate`. Per-item rows stay in `gate/`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from memrl.act import Preload
from memrl.algos.evaluate import EvalResult, evaluate_items, item_scores
from memrl.context import RunContext
from memrl.errors import ConfigError
from memrl.inject import policy_messages
from memrl.metrics import PairedDiff, paired_difference
from memrl.spec import GateSpec
from memrl.types import Item, Message

__all__ = ["GateResult", "carve", "check"]


class GateResult(BaseModel):
    accepted: bool
    before: float
    after: float
    paired: PairedDiff


def carve(train: list[Item], cfg: GateSpec, seed: int) -> tuple[list[Item], list[Item]]:
    """(items to learn from, validation items), the latter a seeded share of the training split."""
    n = cfg.validation if isinstance(cfg.validation, int) else max(1, round(cfg.validation * len(train)))
    if n >= len(train):
        raise ConfigError(
            f"tfgrpo.gate.validation keeps {n} of the {len(train)} training items aside, leaving none to learn "
            "from: lower it (a count, or a share such as 0.25)"
        )
    order = list(train)
    random.Random(f"gate:{seed}").shuffle(order)
    held = {it.id for it in order[:n]}
    return [it for it in train if it.id not in held], [it for it in train if it.id in held]


async def check(
    ctx: RunContext,
    items: list[Item],
    cfg: GateSpec,
    *,
    step: int,
    before: Callable[[Item], str],
    after: Callable[[Item], str],
    preload: Callable[[Item], Preload] | None = None,
    preload_before: Callable[[Item], Preload] | None = None,
) -> GateResult:
    """Score `items` under the memory before and after a step (same seeds); accept unless it got worse.

    The two evaluations run side by side, except for the items whose prompt the step left unchanged: their
    `after` asks exactly what `before` asked, so it waits for `before` and is replayed from the cache."""
    ctx.run.file("gate").mkdir(exist_ok=True)
    ecfg = ctx.spec.eval.model_copy(update={"k": cfg.k, "temperature": cfg.temperature, "limit": None})
    labels = {name: f"gate/step-{step:04d}-{name}" for name in ("before", "after")}
    memo: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    source = {"before": before, "after": after}
    preloads = {"before": preload_before or preload, "after": preload}

    def memory(name: str) -> Callable[[Item], str]:
        def get(it: Item) -> str:  # each item's memory is built once per side
            if it.id not in memo[name]:
                memo[name][it.id] = source[name](it)
            return memo[name][it.id]

        return get

    def evaluate(name: str, subset: list[Item]) -> Awaitable[EvalResult]:
        return evaluate_items(ctx.llm, ctx.verifier, subset, prompt=ctx.spec.prompt, cfg=ecfg, run=ctx.run,
                              label=labels[name], memory_for=memory(name), phase="gate", act=ctx.spec.act,
                              preload_for=preloads[name])  # fmt: skip

    def prompt(name: str, it: Item) -> tuple[list[Message], Preload | None]:
        pre = preloads[name]
        return policy_messages(ctx.spec.prompt, it, memory(name)(it)), pre(it) if pre else None

    changed = [it for it in items if prompt("after", it) != prompt("before", it)]
    runs = [evaluate("before", items), *([evaluate("after", changed)] if changed else [])]
    # as in evaluate_items: a failure lets the other evaluation finish (and save its rows) before it is raised
    errors = [r for r in await asyncio.gather(*runs, return_exceptions=True) if isinstance(r, BaseException)]
    if errors:
        raise next((e for e in errors if not isinstance(e, asyncio.CancelledError)), errors[0])
    await evaluate("after", items)  # the unchanged items; the changed ones resume from their rows
    scores = {name: item_scores(ctx.run, label, items) for name, label in labels.items()}
    ids = [it.id for it in items]
    paired = paired_difference([scores["before"][i] for i in ids], [scores["after"][i] for i in ids])
    mean = {k: sum(v.values()) / len(v) for k, v in scores.items()}
    return GateResult(accepted=mean["after"] >= mean["before"], before=mean["before"], after=mean["after"],
                      paired=paired)  # fmt: skip
