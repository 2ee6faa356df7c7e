"""Evaluation: k samples per held-out item, judged, scored as Mean@k and Pass@k with 95 % intervals.

Per-item results are appended to `<label>.jsonl` in the run directory as each item finishes; a resumed
evaluation skips finished items and replays unfinished ones from the response cache, so nothing is
asked twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from memrl.act import Actor, Preload
from memrl.errors import AuthenticationError
from memrl.inject import policy_messages
from memrl.llm.base import LLM, Request
from memrl.metrics import Score, score_items
from memrl.runs import RunDir
from memrl.spec import ActSpec, EvalSpec, PromptSpec
from memrl.tasks.base import Verifier
from memrl.types import Item, ItemResult

if TYPE_CHECKING:
    from memrl.context import Progress

__all__ = ["EvalResult", "evaluate_items", "item_scores"]


class EvalResult(BaseModel):
    label: str
    score: Score
    seconds: float
    items_per_s: float
    resumed_items: int = 0


async def _one(
    actor: Actor,
    verifier: Verifier,
    prompt: PromptSpec,
    cfg: EvalSpec,
    item: Item,
    memory: str,
    salt: str,
    phase: str = "eval",
    preload: Preload | None = None,
) -> ItemResult:
    msgs = policy_messages(prompt, item, memory)
    req = Request.of(msgs, temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=cfg.stop)
    samples = await actor.answer(req, n=cfg.k, phase=phase, salt=salt, preload=preload)
    verdicts = await asyncio.gather(*(verifier.verify(item, c.text) for c in samples))
    return ItemResult(
        item_id=item.id, question=item.question, answer=item.answer, samples=samples, verdicts=list(verdicts)
    )


def _salt(cfg: EvalSpec, label: str, item: Item) -> str:
    """Every evaluation of an item draws with the same seeds, whatever its label (epoch): common random
    numbers. A request that learning left unchanged is answered once and replayed, so before/after
    differences come from the memory alone — at temperature 0.7 fresh seeds per epoch had moved the
    quickstart's Mean@4 by 12.5 points with no lesson learned (same prompts, 20 items)."""
    return f"eval:{item.id}"


def item_scores(run: RunDir, label: str, items: list[Item] | None = None) -> dict[str, float]:
    """Per-item accuracy (correct samples / k) of a finished evaluation, read from `<label>.jsonl`."""
    rows = [ItemResult.model_validate(r) for r in run.read_jsonl(f"{label}.jsonl")]
    wanted = {it.id for it in items} if items is not None else None
    return {r.item_id: r.n_correct / len(r.samples) for r in rows if wanted is None or r.item_id in wanted}


async def evaluate_items(
    llm: LLM,
    verifier: Verifier,
    items: list[Item],
    *,
    prompt: PromptSpec,
    cfg: EvalSpec,
    run: RunDir,
    label: str = "eval",
    memory: str = "",
    memory_for: Callable[[Item], str] | None = None,
    progress: Progress | None = None,
    concurrency: int = 8,
    phase: str = "eval",
    act: ActSpec | None = None,
    preload_for: Callable[[Item], Preload] | None = None,
) -> EvalResult:
    """Evaluate `items`, resuming from `<label>.jsonl` if it exists. Returns the score over all items. `phase`
    is what the ledger counts the calls under (`gate` for the no-harm gate's validation). With `act` the
    answers may run Python (`memrl.act`), with the code `preload_for` gives an item defined first."""
    actor = Actor(llm, act)
    if cfg.limit:
        items = items[: cfg.limit]
    fname = f"{label}.jsonl"
    done: dict[str, ItemResult] = {}
    for rec in run.read_jsonl(fname):
        r = ItemResult.model_validate(rec)
        done[r.item_id] = r
    wanted = {it.id for it in items}
    done = {k: v for k, v in done.items() if k in wanted}
    resumed = len(done)
    todo = [it for it in items if it.id not in done]
    if progress:
        progress.start(label, len(items))
        progress.advance(label, resumed)
    gate = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    tasks: list[asyncio.Future[None]] = []

    async def task(it: Item) -> None:
        try:
            async with gate:
                mem = memory_for(it) if memory_for else memory
                pre = preload_for(it) if preload_for else None
                r = await _one(actor, verifier, prompt, cfg, it, mem, salt=_salt(cfg, label, it), phase=phase,
                               preload=pre)  # fmt: skip
        except AuthenticationError:  # the key refused now is refused for every queued call: send none
            for t in tasks:
                t.cancel()
            raise
        run.append_jsonl(fname, r.model_dump_json())
        done[it.id] = r
        if progress:
            progress.advance(label)

    # Other failures let the items in flight finish (and be saved for a resume) before the first is raised.
    tasks.extend(asyncio.ensure_future(task(it)) for it in todo)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise next((e for e in errors if not isinstance(e, asyncio.CancelledError)), errors[0])
    seconds = time.perf_counter() - t0
    ordered = [done[it.id] for it in items]
    truncated = sum(c.truncated for r in ordered for c in r.samples)
    score = score_items([r.n_correct for r in ordered], cfg.k, truncated=truncated)
    return EvalResult(
        label=label,
        score=score,
        seconds=seconds,
        items_per_s=len(todo) / seconds if seconds > 0 and todo else 0.0,
        resumed_items=resumed,
    )
