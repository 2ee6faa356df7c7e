"""Training-Free GRPO: learn an experience library from groups of rollouts (arXiv 2510.08191).

Each step: sample `group_size` rollouts for each of `batch_size` training queries with the current
library in the prompt (`learning.rollout_group`); judge them; count each lesson's use and its paired
evidence; for every group whose rewards differ the learner summarises the rollouts, extracts the semantic
advantage as lessons and proposes edits against a snapshot of the library (`advantage`); all proposals of
the step go through the one curation path (`memrl.library.curate`); with `tfgrpo.gate` the step is kept only
if a validation split of the training data does not score lower (`gate`); the new library version is saved.
Held-out evaluation before learning and after every epoch, with the same seeds.

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

from memrl.act import Preload
from memrl.algos.evaluate import evaluate_items, item_scores
from memrl.algos.tfgrpo import gate
from memrl.algos.tfgrpo.advantage import learn_from_group
from memrl.algos.tfgrpo.learning import Learning, rollout_group
from memrl.algos.tfgrpo.metrics import entropy_metrics, lesson_kl_metrics, library_metrics, rollout_metrics
from memrl.context import RunContext
from memrl.diversity.monitor import check_collapse
from memrl.inject import (
    LessonVectors,
)
from memrl.library import Library, curate, has_advantage
from memrl.library.store import JsonFolderStore
from memrl.metrics import paired_difference
from memrl.runs import RunDir, atomic_write
from memrl.spec import TFGRPOSpec
from memrl.types import Item

__all__ = ["run_tfgrpo", "rollout_group"]

log = logging.getLogger(__name__)


def _batches(train: list[Item], cfg: TFGRPOSpec, seed: int, epoch: int) -> list[list[Item]]:
    order = list(train)
    random.Random(f"{seed}:{epoch}").shuffle(order)
    steps = cfg.steps_per_epoch or math.ceil(len(order) / cfg.batch_size)
    return [
        [order[(s * cfg.batch_size + j) % len(order)] for j in range(cfg.batch_size)] for s in range(steps)
    ]


def _gate_memory(lr: Learning) -> dict[str, tuple[str, Preload]]:
    """Each validation item's memory text and preloaded code, as held-out evaluation would build them now."""
    return {it.id: (lr.eval_memory(it), lr.eval_preload(it)) for it in lr.gate_items}


class _Before:
    """What the gate compares a step against, read before the step writes anything: each validation item's
    memory and the skills' trust."""

    def __init__(self, lr: Learning) -> None:
        self.memory = _gate_memory(lr)
        self.skills = {k.id: k.status for k in lr.skills.skills} if lr.skills is not None else {}


async def _gate(
    lr: Learning, pre: Library, step: int, was: _Before, now: dict[str, tuple[str, Preload]]
) -> dict[str, Any]:
    """The no-harm gate for one step: keep the memory the step left (`now`), or go back to the memory before
    it (`was`)."""
    assert lr.cfg.gate is not None
    res = await gate.check(lr.ctx, lr.gate_items, lr.cfg.gate, step=step,
                           before=lambda it: was.memory[it.id][0], after=lambda it: now[it.id][0],
                           preload_before=lambda it: was.memory[it.id][1],
                           preload=lambda it: now[it.id][1])  # fmt: skip
    if not res.accepted:
        old = {x.id: x.text for x in pre.active()}
        new = {x.id: x.text for x in lr.library.active()}
        lr.library.restore(pre)
        cases = 0
        if lr.cases is not None:
            cases = len(lr.cases)
            lr.cases.restore(step - 1)  # the memory of the last finished step: this step's cases go
            cases -= len(lr.cases)
        held: list[str] = []
        for k in lr.skills.skills if lr.skills is not None else []:
            status = was.skills.get(k.id, "candidate")
            if k.status != status:
                held.append(k.id)
                k.status = status
        lr.ctx.run.append_jsonl("events.jsonl", {
            "step": step, "event": "gate_rejected", "before": res.before, "after": res.after,
            "paired": res.paired.model_dump(), "added": [new[i] for i in new if i not in old],
            "changed": [new[i] for i in new if i in old and new[i] != old[i]],
            "deleted": [old[i] for i in old if i not in new], "cases_removed": cases, "skills_reset": held,
        })  # fmt: skip
    return {"gate": {"accepted": res.accepted, "before": res.before, "after": res.after,
                     "n_items": res.paired.n_items}}  # fmt: skip


async def _step(lr: Learning, batch: list[Item], step: int) -> dict[str, Any]:
    ctx, library, cfg = lr.ctx, lr.library, lr.cfg
    t0 = time.perf_counter()
    size_before = len(library)
    was = _Before(lr) if lr.gate_items else None
    results = await asyncio.gather(*(rollout_group(lr, it, step=step) for it in batch))
    groups = [g for g, _, _, _ in results]
    ctx.run.write_json(
        f"rollouts/step-{step:04d}.json",
        [[r.model_dump(mode="json") | {"lessons": ids[r.sample], "cases": [h.record.id for h in sel[r.sample].hits],
                                        "skills": [k.id for k in sk]}
          for r in g] for g, ids, sel, sk in results],
    )  # fmt: skip
    skill_m: dict[str, Any] = {}
    if lr.skills is not None:
        new = [lr.skills.learn(it, sk, r.completion, r.verdict.correct, step)
               for it, (g, _, _, sk) in zip(batch, results, strict=True) for r in g]  # fmt: skip
        skill_m = {"skills": len(lr.skills), "skills_new": sum(x is not None for x in new),
                   "skills_trusted": sum(k.status == "trusted" for k in lr.skills.skills),
                   "skills_retired": sum(k.status == "retired" for k in lr.skills.skills)}  # fmt: skip
    for g, ids, _, _ in results:
        for r in g:
            library.count_use(ids[r.sample], correct=r.verdict.correct, step=step)
        library.count_contrast([ids[r.sample] for r in g], [r.verdict.reward for r in g])
    case_m: dict[str, Any] = {}
    if lr.cases is not None:
        recs = [lr.cases.record(step, it, g, sel) for it, (g, _, sel, _) in zip(batch, results, strict=True)]
        lr.cases.save()
        deltas = [d for r in recs for d in r["q_deltas"]]
        case_m = {"cases": len(lr.cases), "cases_written": sum(r["written"] for r in recs),
                  "cases_shown": sum(len(s.hits) for _, _, sel, _ in results for s in sel)}  # fmt: skip
        if deltas:
            case_m["q_delta_mean"] = sum(deltas) / len(deltas)
    snapshot = library.active()
    mixed = [(i, it, g) for i, (it, g) in enumerate(zip(batch, groups, strict=True))
             if lr.use_lessons and has_advantage([r.verdict.reward for r in g])]  # fmt: skip
    proposals = await asyncio.gather(
        *(
            learn_from_group(lr.learner, it, i, g, snapshot, cfg, step=step, salt=f"learn:{step}:{i}:{it.id}")
            for i, it, g in mixed
        )
    )
    entropy = await entropy_metrics(lr, groups) if lr.ecfg else {}
    before = {x.id: x.text for x in library.active()}
    pre = library.copy()
    cur = await curate(list(proposals), library, tfgrpo=cfg, diversity=lr.dcfg, vectors=lr.vectors,
                       learner=lr.learner, step=step, salt=f"learn:{step}", task_terms=lr.task_terms)  # fmt: skip
    gate_m: dict[str, Any] = {}
    if was is not None:
        now = _gate_memory(lr)
        if before != {x.id: x.text for x in library.active()} or now != was.memory:
            gate_m = await _gate(lr, pre, step, was, now)
    for rej in cur.rejected:
        ctx.run.append_jsonl("events.jsonl", {"step": step, "event": "rejected_op", **rej.model_dump()})
    if cur.merged or cur.pruned:
        ctx.run.append_jsonl(
            "events.jsonl", {"step": step, "event": "upkeep", "merged": cur.merged, "pruned": cur.pruned}
        )
    if lr.ecfg and lr.ecfg.lesson_kl:
        changed = [x for x in library.active() if before.get(x.id) != x.text][:4]
        entropy |= await lesson_kl_metrics(lr, changed, batch, groups)
    m = rollout_metrics(groups) | entropy
    alarm = check_collapse(lr.dcfg, m, size_before, len(library)) if lr.dcfg.enabled else None
    if alarm:
        lr.temperature = min(1.2, lr.temperature + lr.dcfg.alarm_temperature_step)
        lr.explore = True
        ctx.run.append_jsonl("events.jsonl", {"step": step, "event": "collapse_alarm", "reasons": alarm.reasons,
                                              "response": {"temperature": lr.temperature, "explore": True}})  # fmt: skip
    return {
        **m,
        **case_m,
        **skill_m,
        **gate_m,
        **library_metrics(lr),
        "groups": len(groups),
        "learned_groups": len(mixed),
        "lessons_proposed": sum(len(p.lessons) for p in proposals),
        "ops": cur.ops,
        "rejected_ops": len(cur.rejected),
        "reconcile_pairs": cur.judged_pairs,
        "reconcile_same": cur.judged_same,
        "merged": len(cur.merged),
        "pruned": len(cur.pruned),
        "alarm": bool(alarm),
        "temperature": lr.temperature,
        "explore": lr.explore,
        "step_seconds": round(time.perf_counter() - t0, 3),
    }


async def run_tfgrpo(ctx: RunContext) -> dict[str, Any]:
    spec, run = ctx.spec, ctx.run
    cfg = spec.tfgrpo or TFGRPOSpec()
    state = run.read_json("state.json", default={"last_step": 0, "library_version": 0})
    store = JsonFolderStore(run.path)  # one writer: a second process on this run directory is refused
    library = store.load(version=state["library_version"]) if state["last_step"] else Library()
    _trim_metrics(ctx, state["last_step"])
    lr = Learning(ctx, library, ctx.learner, LessonVectors(ctx.embedder), state)
    if lr.cases is not None:  # back to the memory of the last finished step (a killed step wrote cases)
        lr.cases.restore(state["last_step"])
    if lr.skills is not None:
        lr.skills.restore(state["last_step"])

    results: dict[str, Any] = {}

    async def evaluate(label: str) -> None:
        res = await evaluate_items(
            ctx.llm, ctx.verifier, ctx.split.test, prompt=spec.prompt, cfg=spec.eval, run=run,
            label=label, progress=ctx.progress, memory_for=lr.eval_memory, act=spec.act,
            preload_for=lr.eval_preload,
        )  # fmt: skip
        results[label] = res.model_dump() | {"library_version": library.version, "lessons": len(library)}

    if state["last_step"] == 0:
        await evaluate("eval-epoch0")
    else:  # evaluation of the empty library (version 0), already done before the kill
        results["eval-epoch0"] = _saved(run, "eval-epoch0") | {"library_version": 0, "lessons": 0}
    step = 0
    train = ctx.split.train
    if cfg.gate.enabled:
        train, lr.gate_items = gate.carve(train, cfg.gate, spec.run.seed)
    plan = {e: _batches(train, cfg, spec.run.seed, e) for e in range(1, cfg.epochs + 1)}
    ctx.progress.start("learning steps", sum(map(len, plan.values())))
    ctx.progress.advance("learning steps", state["last_step"])
    for epoch in range(1, cfg.epochs + 1):
        for batch in plan[epoch]:
            step += 1
            if step <= state["last_step"]:
                continue
            m = await _step(lr, batch, step)
            version = library.commit(note=f"epoch {epoch} step {step}")
            store.save(library)
            ctx.save_usage()
            run.append_jsonl("metrics.jsonl", {
                "epoch": epoch, "step": step, "library_version": version, **m, "usage": ctx.llm.ledger.snapshot(),
            })  # fmt: skip
            if lr.cases is not None:
                lr.cases.checkpoint(step)
            if lr.skills is not None:
                lr.skills.checkpoint(step)
            state = {"last_step": step, "library_version": version, "epoch": epoch,
                     "temperature": lr.temperature, "explore": lr.explore}  # fmt: skip
            run.write_json("state.json", state)
            ctx.progress.advance("learning steps")
        await evaluate(f"eval-epoch{epoch}")
    store.save(library)
    library.export(run.file("library-export.json"))
    first, last = results["eval-epoch0"]["score"], results[f"eval-epoch{cfg.epochs}"]["score"]
    before = item_scores(run, "eval-epoch0", ctx.split.test)
    after = item_scores(run, f"eval-epoch{cfg.epochs}", ctx.split.test)
    shared = [i for i in before if i in after]
    paired = paired_difference([before[i] for i in shared], [after[i] for i in shared])
    results["learning"] = {
        "steps": step,
        "lessons": len(library),
        "library_version": library.version,
        "cases": len(lr.cases) if lr.cases is not None else None,
        "skills": {
            k: sum(x.status == k for x in lr.skills.skills) for k in ("candidate", "trusted", "retired")
        }
        if lr.skills is not None
        else None,
        "mean_at_k_before": first["mean_at_k"],
        "mean_at_k_after": last["mean_at_k"],
        "paired": paired.model_dump() | {"verdict": paired.verdict},
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
    """Drop metric and event lines of a step that was killed before its checkpoint (it is about to run
    again and will write them anew)."""
    for name in ("metrics.jsonl", "events.jsonl"):
        if ctx.run.file(name).exists():
            lines = [m for m in ctx.run.read_jsonl(name) if m.get("step", 0) <= last_step]
            atomic_write(ctx.run.file(name), "".join(json.dumps(m) + "\n" for m in lines))
