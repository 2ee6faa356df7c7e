"""The no-harm gate (`tfgrpo.gate`): a user can say "memrl will not make my agent worse on my validation data".

Before learning, a validation split is carved from the *training* items (seeded, never the held-out split) and
kept out of the rollouts. After every step that changed the lessons, the validation items are answered twice,
with the memory from before the step and with the memory the step left, with the same seeds (an unchanged
prompt is replayed from the cache), and compared item by item. A step whose library scores lower is rolled
back: its edits are undone (ids are not reused), logged as a `gate_rejected` event and listed by `memrl library
show`. Its calls are counted under their own phase, `gate`. Per-item rows stay in `gate/`.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pydantic import BaseModel

from memrl.algos.evaluate import evaluate_items, item_scores
from memrl.context import RunContext
from memrl.errors import ConfigError
from memrl.metrics import PairedDiff, paired_difference
from memrl.spec import GateSpec
from memrl.types import Item

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
) -> GateResult:
    """Score `items` under the memory before and after a step (same seeds); accept unless it got worse."""
    ctx.run.file("gate").mkdir(exist_ok=True)
    ecfg = ctx.spec.eval.model_copy(update={"k": cfg.k, "temperature": cfg.temperature, "limit": None})
    scores = {}
    for name, memory_for in (("before", before), ("after", after)):
        label = f"gate/step-{step:04d}-{name}"
        await evaluate_items(ctx.llm, ctx.verifier, items, prompt=ctx.spec.prompt, cfg=ecfg, run=ctx.run,
                             label=label, memory_for=memory_for, phase="gate")  # fmt: skip
        scores[name] = item_scores(ctx.run, label, items)
    ids = [it.id for it in items]
    paired = paired_difference([scores["before"][i] for i in ids], [scores["after"][i] for i in ids])
    mean = {k: sum(v.values()) / len(v) for k, v in scores.items()}
    return GateResult(accepted=mean["after"] >= mean["before"], before=mean["before"], after=mean["after"],
                      paired=paired)  # fmt: skip
