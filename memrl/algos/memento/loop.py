"""Memento (arXiv 2508.16153) as `algorithm: memento`: a planner–executor agent that learns by writing memory.

Each episode: choose cases from case memory (similarity, or similarity + online Q with exploration; see
`memrl.cases`), plan a DAG of subtasks, execute them with tools (hints from subtask and tool memory), answer or
finish the game; then write the case (task, plan, trajectory, reward), its subtasks and every tool call, and
update Q. Training episodes learn; held-out episodes read memory only (unless `learn_during_eval`). With
`memento.skills` (a Training-Free GRPO run's verified skills) the python tool of each episode defines the
trusted skills chosen for its task (`SkillLibrary.select`, as that run's held-out evaluation chose them).

Run directory: `episodes.jsonl` (full traces), `metrics.jsonl` (one line per episode, with the Q
distribution), `state.json`, `memory/` (chroma; or `memento.memory`), `memento_q.json` beside the memory.
Resume: a finished episode's trace is saved in `pending.json` before memory is written; a kill after that
re-applies the (idempotent) writes from it, a kill before replays the episode from the response cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from memrl.algos.memento.agent import EpisodeTrace, run_episode
from memrl.algos.memento.env import open_episode
from memrl.cases import CaseRetriever, QModel, distribution
from memrl.context import RunContext
from memrl.memory.base import MemoryStores
from memrl.memory.records import CaseRecord, MetaValue, SubtaskRecord, ToolCallRecord
from memrl.metrics import mean_ci, score_items
from memrl.runs import atomic_write
from memrl.spec import MementoSpec
from memrl.tools.base import Tool, short
from memrl.tools.builtin import builtin_tools, python_tool
from memrl.types import Item

__all__ = [
    "run_memento",
    "open_tools",
    "episode_tools",
    "wilson",
    "summarise",
    "write_episode_memory",
    "q_path",
]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95 % interval of a success rate."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Success rate and mean reward, each with a 95 % interval, over episode lines of metrics.jsonl."""
    n = len(rows)
    wins = sum(bool(r["success"]) for r in rows)
    m, lo, hi = mean_ci([float(r["reward"]) for r in rows])
    seconds = sum(r["seconds"] for r in rows)
    return {"episodes": n, "success_rate": wins / n if n else 0.0, "success_ci": wilson(wins, n),
            "mean_reward": m, "reward_ci": (lo, hi),
            "mean_steps": sum(r["steps"] for r in rows) / n if n else 0.0,
            "mean_tokens": sum(r["tokens"] for r in rows) / n if n else 0.0,
            # success as an evaluation score (k = 1), the shape `memrl run` prints
            "score": score_items([int(bool(r["success"])) for r in rows], 1).model_dump(),
            "items_per_s": n / seconds if seconds > 0 else 0.0}  # fmt: skip


@contextlib.asynccontextmanager
async def open_tools(cfg: MementoSpec) -> AsyncIterator[list[Tool]]:
    """Built-in tools plus those of every MCP server, which stay up for the `async with`."""
    tools: list[Tool] = list(builtin_tools(cfg.tools))
    async with contextlib.AsyncExitStack() as stack:
        for srv in cfg.mcp_servers:
            from memrl.tools.mcp import mcp_stdio_tools

            tools += await stack.enter_async_context(
                mcp_stdio_tools(
                    srv.command, srv.args, env=srv.env, prefix=srv.prefix, timeout_s=srv.timeout_s
                )
            )
        yield tools


def episode_tools(ctx: RunContext, cfg: MementoSpec, tools: list[Tool]) -> Callable[[Item], list[Tool]]:
    """The tools of one episode: the run's, with `memento.skills` a python tool that defines the trusted
    skills chosen for the task (their signatures in its description). Candidates never reach an episode."""
    if not cfg.skills:
        return lambda item: tools
    from memrl.inject import LessonVectors
    from memrl.memory.embed import make_embedder
    from memrl.skills import SkillLibrary
    from memrl.spec import SkillSpec

    path = Path(cfg.skills).expanduser()
    lib = SkillLibrary.deployed(path if path.is_absolute() else ctx.spec.base_dir / path,
                                SkillSpec(k=cfg.skills_k), vectors=LessonVectors(make_embedder(cfg.embedder)))  # fmt: skip
    at = cfg.tools.index("python")  # the built-in tools come first, in `memento.tools` order

    def for_item(item: Item) -> list[Tool]:
        chosen = lib.select(item, trusted_only=True)
        if not chosen:
            return tools
        return [*tools[:at], python_tool(preload=lib.preload(chosen)), *tools[at + 1 :]]

    return for_item


def _case_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def write_episode_memory(memory: MemoryStores, trace: EpisodeTrace, key: str, phase: str) -> str:
    """Write the case, its subtasks and its tool calls. Ids derive from `key`: writing twice changes nothing."""
    cid = _case_id(key)
    meta: dict[str, MetaValue] = {"episode": key, "item": trace.item_id, "phase": phase}
    answer = f"answer {short(trace.answer, 80)!r}: " if trace.answer is not None else ""
    memory.cases.upsert([CaseRecord(
        id=cid, task=trace.task, plan=trace.plan_text(), trajectory=trace.trajectory(),
        outcome=answer + trace.outcome.detail, reward=trace.outcome.reward, success=trace.outcome.success,
        metadata=meta,
    )])  # fmt: skip
    subtasks, calls = [], []
    for i, run in enumerate(trace.subtasks):
        sid = f"{cid}-{i}"
        subtasks.append(SubtaskRecord(id=sid, subtask=run.subtask.goal, parent_task=short(trace.task, 500),
                                      parent_id=cid, result=run.result, success=run.success, metadata=meta))  # fmt: skip
        for j, s in enumerate(run.steps):
            calls.append(ToolCallRecord(
                id=f"{sid}-{j}", tool=s.call.tool, args_summary=short(json.dumps(s.call.args), 200),
                outcome=short(s.output, 300), error=s.error, latency_s=s.latency_s,
                metadata={**meta, "subtask_id": sid},
            ))  # fmt: skip
    memory.subtasks.upsert(subtasks)
    memory.tools.upsert(calls)
    return cid


def q_path(ctx: RunContext, cfg: MementoSpec) -> Path:
    """Q lives beside a local memory folder (it is learned with that memory), else in the run directory."""
    if cfg.memory and "://" not in cfg.memory:
        return Path(cfg.memory).expanduser() / f"memento_q_{cfg.namespace}.json"
    return ctx.run.file("memento_q.json")


def _schedule(ctx: RunContext, cfg: MementoSpec) -> list[tuple[str, Item, str]]:
    """(phase, item, key) per episode. The key seeds sampling and exploration: it names the game or question
    and its repeat, never the position, so the same item gets the same seeds with or without training first."""
    train = ctx.split.train
    n_train = len(train) if cfg.train_episodes is None else cfg.train_episodes
    out = [("train", train[i % len(train)], f"{i // len(train)}") for i in range(n_train)] if train else []
    if cfg.evaluate:
        test = ctx.split.test[: ctx.spec.eval.limit] if ctx.spec.eval.limit else ctx.split.test
        out += [("eval", it, "0") for it in test]
    seed = ctx.spec.run.seed
    return [(phase, it, f"{seed}:{phase}:{it.id}:{rep}") for phase, it, rep in out]


def _metrics(n: int, phase: str, trace: EpisodeTrace, sel: dict[str, Any], q: QModel | None,
             deltas: list[float]) -> dict[str, Any]:  # fmt: skip
    steps = [s for r in trace.subtasks for s in r.steps]
    line = {
        "episode": n, "phase": phase, "item": trace.item_id, "reward": trace.outcome.reward,
        "success": trace.outcome.success, "score": trace.outcome.score, "max_score": trace.outcome.max_score,
        "steps": trace.steps, "tokens": trace.tokens, "seconds": trace.seconds, "stop": trace.stop,
        "plans": len(trace.plans), "rejected_plans": sum(len(p.rejected) for p in trace.plans),
        "fallback_plans": sum(p.fallback for p in trace.plans), "subtasks": len(trace.subtasks),
        "tool_calls": len(steps), "tool_errors": sum(not s.ok for s in steps),
        "cases": len(sel["used"]), "cases_positive": sel["positive"], "explored": sum(sel["explored"]),
        "pool": sel["pool_size"],
    }  # fmt: skip
    if q is not None:
        line |= {"q_pool": distribution(sel["pool_q"]), "q_selected": [round(v, 4) for v in sel["q_values"]],
                 "q_bias": distribution(list(q.bias.values())), "q_theta": [round(float(t), 4) for t in q.theta],
                 "td_errors": [round(d, 4) for d in deltas]}  # fmt: skip
    return line


async def run_memento(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.spec.memento or MementoSpec()
    run = ctx.run
    memory = ctx.open_memory(cfg.memory or run.file("memory"), embedder=cfg.embedder, namespace=cfg.namespace)
    qfile = q_path(ctx, cfg)
    cases = CaseRetriever(memory.cases, cfg.cases, q_path=qfile)
    q = cases.q
    schedule = _schedule(ctx, cfg)
    state = run.read_json("state.json", default={"done": 0})
    ctx.progress.start("episodes", len(schedule))
    ctx.progress.advance("episodes", state["done"])

    def trim(n: int) -> None:
        """Drop log lines of episodes from `n` on: a kill can leave some of a commit it interrupted."""
        for name in ("episodes.jsonl", "metrics.jsonl"):
            if run.file(name).exists():
                lines = [r for r in run.read_jsonl(name) if r["episode"] < n]
                atomic_write(run.file(name), "".join(json.dumps(r, default=str) + "\n" for r in lines))

    def commit(n: int, key: str, phase: str, trace: EpisodeTrace, sel: dict[str, Any]) -> None:
        learn = phase == "train" or cfg.learn_during_eval
        if learn and cfg.write_memory:
            write_episode_memory(memory, trace, key, phase)
            memory.cases.mark_used([u[0] for u in sel["used"]])
        used = [tuple(u) for u in sel["used"]]
        deltas = q.update(key, used, trace.outcome.reward) if learn and q is not None else []  # type: ignore[arg-type]
        if q is not None:
            q.save(qfile)
        run.append_jsonl(
            "episodes.jsonl", {"episode": n, "phase": phase, "key": key, **trace.model_dump(mode="json")}
        )
        run.append_jsonl("metrics.jsonl", _metrics(n, phase, trace, sel, q, deltas))
        run.write_json("state.json", {"done": n + 1})
        run.file("pending.json").unlink(missing_ok=True)
        ctx.save_usage()
        ctx.progress.advance("episodes")

    trim(state["done"])
    pending = run.read_json("pending.json")
    if pending and pending["n"] == state["done"]:  # killed while committing: finish the commit
        commit(pending["n"], pending["key"], pending["phase"], EpisodeTrace.model_validate(pending["trace"]),
               pending["selection"])  # fmt: skip
        state = {"done": pending["n"] + 1}

    async with open_tools(cfg) as tools:
        tools_for = episode_tools(ctx, cfg, tools)
        for n, (phase, item, key) in enumerate(schedule):
            if n < state["done"]:
                continue
            episode = open_episode(item, ctx.verifier, tools_for(item))
            try:
                # held-out episodes take the greedy ranking; no episode gets its own task's case
                sel = cases.select(episode.task, random.Random(key), explore=phase == "train")
                hint_memory = memory if (cfg.subtask_memory or cfg.tool_memory) else None
                trace = await run_episode(ctx.llm, episode, cfg=cfg, cases=sel, memory=hint_memory, salt=key)
            finally:
                episode.close()
            summary = sel.summary()
            run.write_json("pending.json", {"n": n, "key": key, "phase": phase, "selection": summary,
                                            "trace": trace.model_dump(mode="json")})  # fmt: skip
            commit(n, key, phase, trace, summary)
    rows = list(run.read_jsonl("metrics.jsonl"))
    results: dict[str, Any] = {"memory": {k: s.count() for k, s in memory.stores().items()}}
    for phase in ("train", "eval"):
        part = [r for r in rows if r["phase"] == phase]
        if part:
            results[phase] = summarise(part)
    return results
