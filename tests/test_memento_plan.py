"""The planner's DAG: validation (cycles, dangling and self dependencies, repeated ids), order, re-planning."""

from __future__ import annotations

import asyncio
import json
import random

import jsonschema
import pytest

from memrl.algos.memento.plan import Plan, make_plan, plan_order, plan_problems, plan_schema
from memrl.testing import ScriptedLLM


def plan(*subtasks: tuple[str, list[str]]) -> Plan:
    return Plan.model_validate(
        {"subtasks": [{"id": i, "goal": f"do {i}", "depends_on": d} for i, d in subtasks]}
    )


def test_valid_dag_runs_in_dependency_order():
    p = plan(("s1", ["s3"]), ("s2", []), ("s3", ["s2"]), ("s4", ["s1", "s2"]))
    assert plan_problems(p) == []
    order = [s.id for s in plan_order(p)]
    assert order == ["s2", "s3", "s1", "s4"]
    # independent subtasks keep the planner's order
    assert [s.id for s in plan_order(plan(("s1", []), ("s2", []), ("s3", [])))] == ["s1", "s2", "s3"]


@pytest.mark.parametrize(
    ("subtasks", "problem"),
    [
        ((("s1", ["s2"]), ("s2", ["s1"])), "dependency cycle: s1 -> s2 -> s1"),
        ((("s1", []), ("s2", ["s3"]), ("s3", ["s4"]), ("s4", ["s2"])), "dependency cycle"),
        ((("s1", []), ("s2", ["s9"])), "s2 depends on s9, which is not a subtask of the plan"),
        ((("s1", ["s1"]),), "s1 depends on itself"),
        ((("s1", []), ("s1", [])), "subtask ids repeat: s1"),
    ],
)
def test_invalid_plans_are_named(subtasks, problem):
    problems = plan_problems(plan(*subtasks))
    assert any(problem in p for p in problems), problems


def _js(p: Plan) -> str:
    return p.model_dump_json()


def test_replans_after_a_cycle_and_a_dangling_dependency():
    cyclic = _js(plan(("s1", ["s2"]), ("s2", ["s1"])))
    dangling = _js(plan(("s1", []), ("s2", ["s5"])))
    good = _js(plan(("s1", []), ("s2", ["s1"])))
    llm = ScriptedLLM([cyclic, dangling, good])
    res = asyncio.run(make_plan(llm, {"task": "t", "observation": "", "progress": [], "positive": [], "negative": [],
                                      "tools": []}, task="t", max_subtasks=4, max_replans=2, temperature=0.0,
                                max_tokens=64, salt="x", ordered=False))  # fmt: skip
    llm.assert_consumed()
    assert res.attempts == 3 and not res.fallback and [s.id for s in res.plan.subtasks] == ["s1", "s2"]
    assert "cycle" in res.rejected[0][0] and "s5" in res.rejected[1][0]
    # the re-plan prompt names the problem of the rejected plan
    second_prompt = llm.requests[1][0].messages[-1].content
    assert "Your last plan was invalid: dependency cycle" in second_prompt


def test_falls_back_to_one_subtask_when_every_plan_is_invalid():
    bad = _js(plan(("s1", ["s1"])))
    llm = ScriptedLLM([bad, "not json at all", "{}", bad])
    res = asyncio.run(make_plan(llm, {"task": "T", "observation": "", "progress": [], "positive": [], "negative": [],
                                      "tools": []}, task="Cook the meal", max_subtasks=3, max_replans=2,
                                temperature=0.0, max_tokens=64, salt="x"))  # fmt: skip
    llm.assert_consumed()  # 3 attempts; the unparsable one was retried once by ask_structured
    assert res.fallback and res.plan.subtasks[0].goal == "Cook the meal" and len(res.rejected) == 3


def test_ordered_schema_admits_only_dags():
    schema = plan_schema(4, ordered=True)
    rng = random.Random(0)
    for _ in range(200):  # random instances that satisfy the schema are all valid DAGs
        n = rng.randint(1, 4)
        subtasks = [{"id": f"s{i + 1}", "goal": f"step number {i}",
                     "depends_on": sorted(rng.sample([f"s{j + 1}" for j in range(i)], rng.randint(0, i)))}
                    for i in range(n)]  # fmt: skip
        jsonschema.validate({"subtasks": subtasks}, schema)
        assert plan_problems(Plan.model_validate({"subtasks": subtasks})) == []
    for bad in (
        [
            {"id": "s1", "goal": "do the first", "depends_on": ["s2"]},
            {"id": "s2", "goal": "do the second", "depends_on": []},
        ],
        [{"id": "s2", "goal": "do the first", "depends_on": []}],
        [{"id": "s1", "goal": "...", "depends_on": []}],
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"subtasks": bad}, schema)
    free = plan_schema(4, ordered=False)  # a free plan may be cyclic: validation catches it afterwards
    cyclic = [
        {"id": "s1", "goal": "do the first", "depends_on": ["s2"]},
        {"id": "s2", "goal": "do the second", "depends_on": ["s1"]},
    ]
    jsonschema.validate({"subtasks": cyclic}, free)
    assert plan_problems(Plan.model_validate({"subtasks": cyclic}))
    json.dumps(schema)
