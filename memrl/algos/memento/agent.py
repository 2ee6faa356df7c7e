"""One Memento episode: retrieved cases → plan (a DAG) → execute subtasks in dependency order → answer.

Games re-plan while unfinished, up to `max_cycles` rounds, with what was done so far in the planner prompt;
questions answer after the first round. Steps, tokens and seconds are bounded per episode: when one runs out
the episode stops where it is (a question still gets its one answer call) and the outcome is judged as is.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from memrl.algos.memento.env import Episode, Outcome
from memrl.algos.memento.exec import BudgetedLLM, EpisodeBudget, EpisodeStop, SubtaskRun, execute_subtask
from memrl.algos.memento.plan import PlanResult, make_plan, plan_order
from memrl.cases import Selection
from memrl.llm.base import LLM, Request
from memrl.memory.base import MemoryStores
from memrl.prompts import load_prompt
from memrl.spec import MementoSpec
from memrl.tools.base import short

__all__ = ["EpisodeTrace", "run_episode", "memory_hints", "case_view"]

log = logging.getLogger(__name__)


class EpisodeTrace(BaseModel):
    """Everything one episode did; what the case, subtask and tool memories are written from."""

    item_id: str
    task: str
    plans: list[PlanResult] = Field(default_factory=list)
    subtasks: list[SubtaskRun] = Field(default_factory=list)
    answer: str | None = None
    outcome: Outcome
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    stop: str = "finished"
    case_ids: list[str] = Field(default_factory=list)

    def trajectory(self, limit: int = 40) -> list[str]:
        lines = [f"{s.subtask_id}: {s.line(120)}" for run in self.subtasks for s in run.steps]
        return lines[:limit]

    def plan_text(self) -> str:
        return " || ".join(p.plan.text() for p in self.plans)


def case_view(hit: Any, steps: int = 6) -> dict[str, Any]:
    """A case as the planner prompt shows it: the steps that earned reward when there are some, else the first."""
    c = hit.record
    key = [t for t in c.trajectory if "[reward +" in t] or c.trajectory
    return {"task": short(c.task, 300), "plan": short(c.plan, 240), "steps": [short(t, 100) for t in key[:steps]],
            "outcome": short(c.outcome, 120), "reward": round(c.reward, 2)}  # fmt: skip


def memory_hints(memory: MemoryStores, goal: str, cfg: MementoSpec) -> list[str]:
    """What subtask memory and tool memory say about subtasks like `goal`."""
    if cfg.hint_k == 0 or not (cfg.subtask_memory or cfg.tool_memory) or memory.subtasks.count() == 0:
        return []
    hits = memory.subtasks.query(goal, cfg.hint_k, min_similarity=cfg.hint_min_similarity)
    lines = []
    if cfg.subtask_memory:
        for h in hits:
            verdict = "worked" if h.record.success else "failed"
            lines.append(short(f"similar subtask '{h.record.subtask}' {verdict}: {h.record.result}", 200))
    if cfg.tool_memory and hits:
        calls = memory.tools.all(where={"subtask_id": {"$in": [h.record.id for h in hits]}})
        by_tool: dict[str, list[Any]] = {}
        for c in calls:
            by_tool.setdefault(c.tool, []).append(c)
        for name, cs in by_tool.items():
            ok = [c for c in cs if c.error is None]
            bad = [c for c in cs if c.error is not None]
            text = f"tool {name}: worked {len(ok)}x" + (f" (e.g. {ok[-1].args_summary})" if ok else "")
            if bad:
                text += f", failed {len(bad)}x (last error: {bad[-1].error})"
            lines.append(short(text, 200))
    return lines


async def _answer(
    llm: LLM, task: str, runs: list[SubtaskRun], cfg: MementoSpec, budget: EpisodeBudget, salt: str
) -> str:
    """The final answer: asked even after a budget stop (outside the budget check), charged to it."""
    msgs = load_prompt("memento_answer").messages(task=task, results=_results(runs))
    req = Request.of(msgs, temperature=cfg.temperature, max_tokens=cfg.answer_max_tokens)
    (c,) = await llm.complete(req, phase="answer", salt=f"{salt}:answer")
    budget.tokens += c.usage.total_tokens
    return c.text.strip()


def _results(runs: list[SubtaskRun]) -> list[str]:
    return [short(f"{r.subtask.goal}: {r.result or '(no result)'}", 200) for r in runs]


async def run_episode(
    llm: LLM,
    episode: Episode,
    *,
    cfg: MementoSpec,
    cases: Selection,
    memory: MemoryStores | None,
    salt: str,
) -> EpisodeTrace:
    """Play one episode; never raises for the model's or the tools' mistakes."""
    budget = EpisodeBudget(cfg.max_steps, cfg.max_tokens, cfg.max_seconds)
    bllm = BudgetedLLM(llm, budget)
    threshold = cfg.cases.positive_reward
    positive = [case_view(h) for h in cases.hits if h.record.success or h.record.reward >= threshold]
    negative = [case_view(h) for h in cases.hits if not (h.record.success or h.record.reward >= threshold)]
    plans: list[PlanResult] = []
    runs: list[SubtaskRun] = []
    stop = "finished"
    try:
        for cycle in range(cfg.max_cycles):
            if budget.steps >= cfg.max_steps:  # no step left for another plan to use
                raise EpisodeStop("steps")
            variables = {"task": episode.task, "observation": episode.observation(), "progress": _results(runs),
                         "positive": positive, "negative": negative,
                         "tools": [t.name for t in episode.tools()]}  # fmt: skip
            pr = await make_plan(
                bllm, variables, task=episode.task, max_subtasks=cfg.max_subtasks, max_replans=cfg.max_replans,
                temperature=cfg.temperature, max_tokens=cfg.planner_max_tokens, salt=f"{salt}:c{cycle}",
                ordered=cfg.plan_schema == "ordered",
            )  # fmt: skip
            plans.append(pr)
            context = {"task": episode.task, "plan": pr.plan.subtasks, "results": _results(runs)}
            for st in plan_order(pr.plan):
                if episode.done:
                    break
                hints = memory_hints(memory, st.goal, cfg) if memory is not None else []
                run = await execute_subtask(bllm, episode, st, cycle=cycle, context=context, hints=hints,
                                            cfg=cfg, budget=budget, salt=f"{salt}:c{cycle}")  # fmt: skip
                runs.append(run)
                context["results"] = _results(runs)
            if episode.done or episode.needs_answer:
                break
    except EpisodeStop as e:
        stop = e.reason
        log.info("episode %s stopped: out of %s", episode.id, e.reason)
    answer = await _answer(llm, episode.task, runs, cfg, budget, salt) if episode.needs_answer else None
    outcome = await episode.outcome(answer)
    return EpisodeTrace(
        item_id=episode.id, task=episode.task, plans=plans, subtasks=runs, answer=answer, outcome=outcome,
        steps=budget.steps, tokens=budget.tokens, seconds=round(budget.seconds, 3), stop=stop,
        case_ids=[h.record.id for h in cases.hits],
    )  # fmt: skip
