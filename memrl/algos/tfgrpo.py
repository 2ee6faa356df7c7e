"""Training-Free GRPO: learn an experience library from groups of rollouts (arXiv 2510.08191).

Each step: sample `group_size` rollouts for each of `batch_size` training queries with the current
library in the prompt; judge them; for every mixed group (0 < mean reward < 1) the learner summarises
the rollouts, extracts the semantic advantage as lessons and proposes edits against a snapshot of the
library; all proposals of the step are reconciled in one pass and applied in code; the new library
version is saved. Held-out evaluation before learning and after every epoch.

Resume: `state.json` names the last finished step and its library version. A killed step is run again
from that version; every model call it had made is replayed from the response cache, so the result is
the same as an uninterrupted run and nothing is paid twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from typing import Any

from memrl.algos.advantage import learn_from_group
from memrl.algos.curate import apply_edits, reconcile
from memrl.algos.evaluate import evaluate_items
from memrl.entropy.measures import plugin_entropy
from memrl.library import Library
from memrl.llm.base import LLM, Request
from memrl.metrics import pass_at_k
from memrl.prompting import memory_block, policy_messages
from memrl.runner import RunContext
from memrl.runs import RunDir, atomic_write
from memrl.spec import TFGRPOSpec
from memrl.types import Item, Rollout

__all__ = ["run_tfgrpo", "rollout_group"]

log = logging.getLogger(__name__)


def library_memory(library: Library) -> str:
    return memory_block(library.texts())


async def rollout_group(
    ctx: RunContext, item: Item, memory: str, cfg: TFGRPOSpec, *, step: int
) -> list[Rollout]:
    msgs = policy_messages(ctx.spec.prompt, item, memory)
    max_tokens = cfg.max_tokens or ctx.spec.eval.max_tokens
    req = Request.of(msgs, temperature=cfg.temperature, max_tokens=max_tokens, stop=ctx.spec.eval.stop)
    samples = await ctx.llm.complete(req, n=cfg.group_size, phase="rollout", salt=f"rollout:{step}:{item.id}")
    verdicts = await asyncio.gather(*(ctx.verifier.verify(item, c.text) for c in samples))
    return [
        Rollout(item_id=item.id, sample=i, messages=msgs, completion=c, verdict=v)
        for i, (c, v) in enumerate(zip(samples, verdicts, strict=True))
    ]


def _batches(train: list[Item], cfg: TFGRPOSpec, seed: int, epoch: int) -> list[list[Item]]:
    order = list(train)
    random.Random(f"{seed}:{epoch}").shuffle(order)
    steps = cfg.steps_per_epoch or math.ceil(len(order) / cfg.batch_size)
    return [
        [order[(s * cfg.batch_size + j) % len(order)] for j in range(cfg.batch_size)] for s in range(steps)
    ]


def _group_metrics(groups: list[list[Rollout]]) -> dict[str, float]:
    means = [sum(r.verdict.reward for r in g) / len(g) for g in groups]
    g = len(groups[0]) if groups else 1
    correct = [sum(r.verdict.correct for r in grp) for grp in groups]
    answers = [[r.verdict.extracted or r.completion.text.strip()[-40:] for r in grp] for grp in groups]
    return {
        "mean_reward": sum(means) / len(means) if means else 0.0,
        "mixed_fraction": sum(0 < m < 1 for m in means) / len(means) if means else 0.0,
        "pass@1": sum(pass_at_k(g, c, 1) for c in correct) / len(correct) if correct else 0.0,
        f"pass@{g}": sum(pass_at_k(g, c, g) for c in correct) / len(correct) if correct else 0.0,
        "answer_entropy": sum(plugin_entropy(a) for a in answers) / len(answers) if answers else 0.0,
        "truncated_share": sum(r.completion.truncated for grp in groups for r in grp)
        / max(1, sum(map(len, groups))),
    }


async def _step(
    ctx: RunContext, learner: LLM, library: Library, batch: list[Item], cfg: TFGRPOSpec, step: int
) -> dict[str, Any]:
    t0 = time.perf_counter()
    memory = library_memory(library)
    shown = [x.id for x in library.active()]
    groups = await asyncio.gather(*(rollout_group(ctx, it, memory, cfg, step=step) for it in batch))
    ctx.run.write_json(
        f"rollouts/step-{step:04d}.json",
        [[r.model_dump(mode="json", exclude={"messages"}) for r in g] for g in groups],
    )
    for g in groups:
        for r in g:
            library.count_use(shown, correct=r.verdict.correct)
    snapshot = library.active()
    mixed = [(i, it, g) for i, (it, g) in enumerate(zip(batch, groups, strict=True))
             if 0 < sum(r.verdict.reward for r in g) / len(g) < 1]  # fmt: skip
    proposals = await asyncio.gather(
        *(
            learn_from_group(learner, it, i, g, snapshot, cfg, step=step, salt=f"learn:{step}:{i}:{it.id}")
            for i, it, g in mixed
        )
    )
    edits, rejected = reconcile(list(proposals), library, cfg)
    counts = apply_edits(edits, library, step=step)
    for r in rejected:
        ctx.run.append_jsonl("events.jsonl", {"step": step, "event": "rejected_op", **r.model_dump()})
    return {
        **_group_metrics(list(groups)),
        "groups": len(groups),
        "learned_groups": len(mixed),
        "lessons_proposed": sum(len(p.lessons) for p in proposals),
        "ops": counts,
        "rejected_ops": len(rejected),
        "step_seconds": round(time.perf_counter() - t0, 3),
    }


async def run_tfgrpo(ctx: RunContext) -> dict[str, Any]:
    spec, run = ctx.spec, ctx.run
    cfg = spec.tfgrpo or TFGRPOSpec()
    state = run.read_json("state.json", default={"last_step": 0, "library_version": 0})
    library = Library.load(run.path, version=state["library_version"]) if state["last_step"] else Library()
    _trim_metrics(ctx, state["last_step"])
    learner: LLM = ctx.llm
    if cfg.learner is not None:
        from memrl.llm.factory import build_llm

        learner = build_llm(cfg.learner, cache=ctx.llm.cache, ledger=ctx.llm.ledger)

    results: dict[str, Any] = {}

    async def evaluate(label: str) -> None:
        res = await evaluate_items(
            ctx.llm, ctx.verifier, ctx.split.test, prompt=spec.prompt, cfg=spec.eval, run=run,
            label=label, memory=library_memory(library), progress=ctx.progress,
        )  # fmt: skip
        results[label] = res.model_dump() | {"library_version": library.version, "lessons": len(library)}

    if state["last_step"] == 0:
        await evaluate("eval-epoch0")
    else:  # evaluation of the empty library, already done before the kill
        results["eval-epoch0"] = _saved(run, "eval-epoch0")
    step = 0
    plan = {e: _batches(ctx.split.train, cfg, spec.run.seed, e) for e in range(1, cfg.epochs + 1)}
    ctx.progress.start("learning steps", sum(map(len, plan.values())))
    ctx.progress.advance("learning steps", state["last_step"])
    for epoch in range(1, cfg.epochs + 1):
        for batch in plan[epoch]:
            step += 1
            if step <= state["last_step"]:
                continue
            m = await _step(ctx, learner, library, batch, cfg, step)
            version = library.commit(note=f"epoch {epoch} step {step}")
            library.save(run.path)
            ctx.save_usage()
            run.append_jsonl("metrics.jsonl", {
                "epoch": epoch, "step": step, "library_version": version, "lessons": len(library),
                "library_words": sum(len(t.split()) for t in library.texts()), **m,
                "usage": ctx.llm.ledger.snapshot(),
            })  # fmt: skip
            state = {"last_step": step, "library_version": version, "epoch": epoch}
            run.write_json("state.json", state)
            ctx.progress.advance("learning steps")
        await evaluate(f"eval-epoch{epoch}")
    library.save(run.path)
    library.export(run.file("library-export.json"))
    first, last = results["eval-epoch0"]["score"], results[f"eval-epoch{cfg.epochs}"]["score"]
    results["learning"] = {
        "steps": step,
        "lessons": len(library),
        "library_version": library.version,
        "mean_at_k_before": first["mean_at_k"],
        "mean_at_k_after": last["mean_at_k"],
    }
    return results


def _saved(run: RunDir, label: str) -> dict[str, Any]:
    """Re-score a finished evaluation from its per-item file (no model calls)."""
    from memrl.metrics import score_items
    from memrl.types import ItemResult

    rows = [ItemResult.model_validate(r) for r in run.read_jsonl(f"{label}.jsonl")]
    k = len(rows[0].samples) if rows else 1
    score = score_items(
        [r.n_correct for r in rows], k, truncated=sum(c.truncated for r in rows for c in r.samples)
    )
    return {
        "label": label,
        "score": score.model_dump(),
        "seconds": 0.0,
        "items_per_s": 0.0,
        "resumed_items": len(rows),
    }


def _trim_metrics(ctx: RunContext, last_step: int) -> None:
    """Drop metric lines of a step that was killed before its checkpoint (it is about to run again)."""
    lines = [m for m in ctx.run.read_jsonl("metrics.jsonl") if m.get("step", 0) <= last_step]
    if ctx.run.file("metrics.jsonl").exists():
        atomic_write(ctx.run.file("metrics.jsonl"), "".join(json.dumps(m) + "\n" for m in lines))
