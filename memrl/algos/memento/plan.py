"""Memento's planner: a plan is a DAG of subtasks, checked with networkx before anything runs.

A plan is rejected when ids repeat, a dependency names a subtask that does not exist (dangling), a subtask
depends on itself, or the dependencies form a cycle. A rejected plan is sent back to the planner with the
problems named (a re-plan), up to `max_replans` times; after that the episode runs a one-subtask plan (the
task itself), so a planner that never produces a valid DAG still gets an attempt, never a crash.
"""

from __future__ import annotations

import logging
from typing import Any

import networkx as nx
from pydantic import BaseModel, Field

from memrl.llm.base import LLM
from memrl.prompts import load_prompt
from memrl.structured import ask_structured

__all__ = ["Subtask", "Plan", "plan_problems", "plan_order", "plan_schema", "make_plan", "PlanResult"]

log = logging.getLogger(__name__)


class Subtask(BaseModel):
    id: str = Field(min_length=1, max_length=16)
    goal: str = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1)

    def text(self) -> str:
        return "; ".join(
            f"{s.id}: {s.goal}" + (f" (after {', '.join(s.depends_on)})" if s.depends_on else "")
            for s in self.subtasks
        )


def _graph(plan: Plan) -> nx.DiGraph:
    g = nx.DiGraph()
    for i, s in enumerate(plan.subtasks):
        g.add_node(s.id, index=i)
    for s in plan.subtasks:
        for d in s.depends_on:
            g.add_edge(d, s.id)  # d must run before s
    return g


def plan_problems(plan: Plan) -> list[str]:
    """Why this plan is not a valid DAG ([] when it is)."""
    problems = []
    ids = [s.id for s in plan.subtasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"subtask ids repeat: {', '.join(dupes)}")
    known = set(ids)
    for s in plan.subtasks:
        for d in s.depends_on:
            if d == s.id:
                problems.append(f"{s.id} depends on itself")
            elif d not in known:
                problems.append(f"{s.id} depends on {d}, which is not a subtask of the plan")
    if not problems:
        try:
            cycle = nx.find_cycle(_graph(plan))
            problems.append("dependency cycle: " + " -> ".join([u for u, _ in cycle] + [cycle[0][0]]))
        except nx.NetworkXNoCycle:
            pass
    return problems


def plan_order(plan: Plan) -> list[Subtask]:
    """Subtasks in an order that respects every dependency; ties keep the planner's order."""
    g = _graph(plan)
    by_id = {s.id: s for s in plan.subtasks}
    order = nx.lexicographical_topological_sort(g, key=lambda n: g.nodes[n]["index"])
    return [by_id[n] for n in order]


#: What a subtask goal may look like: 2 to 15 words, the first a plain word (no empty, "..." or "key: value" goals).
GOAL_PATTERN = r"^[A-Za-z]+( [A-Za-z0-9'+*/().,=-]+){1,14}$"


def plan_schema(max_subtasks: int, *, ordered: bool = True) -> dict[str, Any]:
    """JSON schema of a plan.

    `ordered`: the plan is s1..sL (L ≤ max) and subtask i may depend only on s1..s(i-1) — a DAG by
    construction wherever the provider enforces schemas (llama.cpp), which saves re-plans with small models.
    `ordered=False`: any ids among s1..sN and any dependencies. Either way the plan is validated afterwards.
    """
    ids = [f"s{i}" for i in range(1, max_subtasks + 1)]
    goal = {"type": "string", "pattern": GOAL_PATTERN}

    def item(i: int | None) -> dict[str, Any]:
        if i is None:
            sid: dict[str, Any] = {"type": "string", "enum": ids}
            deps: dict[str, Any] = {
                "type": "array",
                "maxItems": max(max_subtasks - 1, 0),
                "items": {"enum": ids},
            }
        else:
            sid = {"const": ids[i]}
            deps = {"type": "array", "maxItems": i, "items": {"enum": ids[:i]} if i else {"const": "none"}}
        return {"type": "object", "properties": {"id": sid, "goal": goal, "depends_on": deps},
                "required": ["id", "goal", "depends_on"]}  # fmt: skip

    if ordered:
        lists = [{"type": "array", "prefixItems": [item(i) for i in range(n)], "items": False}
                 for n in range(1, max_subtasks + 1)]  # fmt: skip
        subtasks: dict[str, Any] = {"anyOf": lists}
    else:
        subtasks = {"type": "array", "minItems": 1, "maxItems": max_subtasks, "items": item(None)}
    return {"type": "object", "properties": {"subtasks": subtasks}, "required": ["subtasks"]}


class PlanResult(BaseModel):
    plan: Plan
    attempts: int
    rejected: list[list[str]] = Field(default_factory=list, description="Problems of each rejected plan.")
    fallback: bool = False


async def make_plan(
    llm: LLM,
    variables: dict[str, Any],
    *,
    task: str,
    max_subtasks: int,
    max_replans: int,
    ordered: bool = True,
    temperature: float,
    max_tokens: int,
    salt: str,
) -> PlanResult:
    """Ask for a plan, validate it as a DAG, re-plan with the problems named, fall back to one subtask."""
    prompt = load_prompt("memento_plan")
    schema = plan_schema(max_subtasks, ordered=ordered)
    rejected: list[list[str]] = []
    feedback = ""
    for attempt in range(max_replans + 1):
        msgs = prompt.messages(**variables, max_subtasks=max_subtasks, feedback=feedback)
        plan = await ask_structured(
            llm, msgs, Plan, schema=schema, phase="plan", salt=f"{salt}:plan{attempt}",
            temperature=temperature, max_tokens=max_tokens,
        )  # fmt: skip
        problems = ["the answer was not a plan"] if plan is None else plan_problems(plan)
        if plan is not None and not problems:
            return PlanResult(plan=plan, attempts=attempt + 1, rejected=rejected)
        rejected.append(problems)
        feedback = "; ".join(problems)
        log.info("plan rejected (%s), re-planning", feedback)
    fallback = Plan(subtasks=[Subtask(id="s1", goal=task[:200] or "solve the task")])
    return PlanResult(plan=fallback, attempts=max_replans + 1, rejected=rejected, fallback=True)
