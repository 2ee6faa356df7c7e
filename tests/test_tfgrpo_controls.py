"""The diversity controls act inside a Training-Free GRPO run, seen through a model double that records every
prompt: lessons reach rollout and evaluation prompts, MMR picks diverse lessons under the token budget, the
rollouts of a group see different subsets, the edit cap bounds a step, a lesson that hurts is retired, and
the collapse alarm raises the temperature of the next step's rollouts."""

from __future__ import annotations

import json
import re

from memrl.library import Library
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import spec_from_mapping
from memrl.testing import FunctionClient
from memrl.tokens import approx_tokens

NEAR_A = "When adding two numbers, count up from the larger one"
NEAR_B = "When adding two numbers, start from the larger and count up by ones"
OTHER = "When the answer is requested, reply with the bare number only"
POISON = "When a sum is asked, add one more to the total before answering"
SYSTEM = "You are a careful calculator."


def spec(tmp_path, tf=None, diversity=None, steps=2):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "sums.jsonl"
    rows = [{"id": f"q{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
            for a in range(1, 7) for b in (a + 2, a + 4)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "controls", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 4, "seed": 1},
        "prompt": {"system": SYSTEM},
        "eval": {"k": 2, "max_tokens": 8},
        "tfgrpo": {"epochs": 1, "batch_size": 4, "group_size": 4, "steps_per_epoch": steps,
                   "lessons_per_group": 3} | (tf or {}),
        "run": {"dir": str(tmp_path / "runs")},
        "diversity": {"embedder": "hash-64"} | (diversity or {}),
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


class Recorder:
    """The model double: rollouts right for 3 seeds in 4 (always wrong with POISON in the prompt); a learner
    that proposes `lessons` and judges every close pair different. Keeps every policy request."""

    def __init__(self, lessons: list[str]) -> None:
        self.lessons, self.policy_requests = lessons, []

    def __call__(self, req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        props = (req.json_schema or {}).get("properties", {})
        if "Summarise" in user:
            return "The attempt added the numbers."
        if "lessons" in props:
            return json.dumps({"lessons": self.lessons})
        if "verdicts" in props:
            return json.dumps({"verdicts": ["different"] * user.count("Pair ")})
        if "operations" in props:
            new = re.findall(r"^- (When .*)$", user, re.M)
            have = re.findall(r"^\[L\d{4}\] (.*)$", user, re.M)
            return json.dumps({"operations": [{"op": "ADD", "content": t} for t in new if t not in have]})
        self.policy_requests.append(req)
        a, b = map(int, re.findall(r"\d+", user)[:2])
        right = (seed or 0) % 4 != 0 and POISON not in req.messages[0].content
        return str(a + b if right else a + b + 1)


def shown(req: Request) -> list[str]:
    system = req.messages[0].content
    return [t for t in (NEAR_A, NEAR_B, OTHER, POISON) if f"- {t}\n" in system + "\n"]


def rollout_rows(run: RunDir, step: int) -> list[list[dict]]:
    return run.read_json(f"rollouts/step-{step:04d}.json")


def test_lessons_reach_rollout_and_evaluation_prompts_with_per_rollout_subsets(tmp_path):
    rec = Recorder([NEAR_A, OTHER])
    run_task(spec(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(rec))
    run = RunDir(tmp_path / "r")
    lib = Library.load(run.path)
    v1 = {x.id: x.text for x in lib.lessons_at(1).values() if x.status == "active"}
    assert sorted(v1.values()) == sorted([NEAR_A, OTHER])
    by_messages = {json.dumps([m.model_dump() for m in r.messages]): r for r in rec.policy_requests}
    differ = 0
    for group in rollout_rows(run, 2):
        for row in group:
            req = by_messages[json.dumps(row["messages"])]  # the request the model really got
            assert sorted(shown(req)) == sorted(v1[i] for i in row["lessons"])
        sets = [tuple(sorted(r["lessons"])) for r in group]
        assert sets[0] == tuple(sorted(v1)), "rollout 0 sees every selected lesson"
        differ += len(set(sets)) > 1
    assert differ, "exploring rollouts must see other subsets"
    final = set(lib.texts())
    evals = rec.policy_requests[-8:]  # eval-epoch1: 4 held-out items × k = 2
    assert all(shown(r) and set(shown(r)) <= final for r in evals), "lessons must reach held-out prompts"
    first = rec.policy_requests[:8]  # eval-epoch0: the empty library
    assert not any(shown(r) for r in first)


def test_mmr_picks_diverse_lessons_under_the_token_budget(tmp_path):
    # room for any two of the three lessons, not for all three
    budget = max(approx_tokens(NEAR_A), approx_tokens(OTHER)) + approx_tokens(NEAR_B)
    assert budget < approx_tokens(NEAR_A) + approx_tokens(NEAR_B) + approx_tokens(OTHER)
    for injection, want_diverse in (("mmr", True), ("all", False)):
        rec = Recorder([NEAR_A, NEAR_B, OTHER])
        s = spec(
            tmp_path / injection,
            diversity={"injection": injection, "max_memory_tokens": budget, "embedder": "minilm-l6-v2-int8"},
        )  # real relevance
        run_task(s, run_dir=tmp_path / injection / "r", client=FunctionClient(rec))
        run = RunDir(tmp_path / injection / "r")
        assert len(Library.load(run.path).lessons_at(1)) == 3
        for group in rollout_rows(run, 2):
            first = json.dumps(group[0]["messages"])
            texts = shown(next(r for r in rec.policy_requests
                               if json.dumps([m.model_dump() for m in r.messages]) == first))  # fmt: skip
            assert sum(approx_tokens(t) for t in texts) <= budget
            assert (OTHER in texts) == want_diverse, (injection, texts)


def test_the_edit_cap_bounds_every_step(tmp_path):
    rec = Recorder([NEAR_A, OTHER, POISON])
    run_task(
        spec(tmp_path, diversity={"max_edits_per_step": 1}),
        run_dir=tmp_path / "r",
        client=FunctionClient(rec),
    )
    run = RunDir(tmp_path / "r")
    for m in run.read_jsonl("metrics.jsonl"):
        assert m["ops"]["ADD"] + m["ops"]["UPDATE"] + m["ops"]["DELETE"] <= 1
    events = list(run.read_jsonl("events.jsonl"))
    assert any("edit cap of 1" in e.get("reason", "") for e in events)


def test_a_lesson_that_hurts_is_retired_and_the_others_stay(tmp_path):
    rec = Recorder([OTHER, POISON])
    run_task(spec(tmp_path, steps=4), run_dir=tmp_path / "r", client=FunctionClient(rec))
    run = RunDir(tmp_path / "r")
    lib = Library.load(run.path)
    poison = next(x for x in lib.lessons.values() if x.text == POISON)
    pruned = [i for e in run.read_jsonl("events.jsonl") if e["event"] == "upkeep" for i in e["pruned"]]
    assert poison.id in pruned and poison.status == "retired" and poison.losses > poison.wins
    assert OTHER in lib.texts()


def test_the_collapse_alarm_raises_the_next_steps_rollout_temperature(tmp_path):
    rec = Recorder([OTHER])
    s = spec(tmp_path, diversity={"alarm_answer_entropy": 50.0, "alarm_temperature_step": 0.2})
    run_task(s, run_dir=tmp_path / "r", client=FunctionClient(rec))
    run = RunDir(tmp_path / "r")
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert metrics[0]["alarm"] and round(metrics[0]["temperature"], 6) == 0.9
    alarms = [e for e in run.read_jsonl("events.jsonl") if e["event"] == "collapse_alarm"]
    assert alarms and "answer entropy" in alarms[0]["reasons"][0]
    step2 = {json.dumps(r["messages"]) for g in rollout_rows(run, 2) for r in g}
    temps = {round(req.temperature, 6) for req in rec.policy_requests
             if json.dumps([m.model_dump() for m in req.messages]) in step2}  # fmt: skip
    assert temps == {0.9}


def test_a_policy_loaded_from_the_run_injects_what_the_run_evaluated_with(tmp_path):
    """One injection path: `MemoryPolicy.load(run).augment` gives a held-out prompt exactly the memory (same
    lessons, same MMR order, same budget, same place) that the run's own evaluation showed."""
    from memrl.inject import policy_messages
    from memrl.policy import MemoryPolicy
    from memrl.types import Item

    rec = Recorder([NEAR_A, OTHER])
    s = spec(tmp_path, diversity={"embedder": "minilm-l6-v2-int8"})
    run_task(s, run_dir=tmp_path / "r", client=FunctionClient(rec))
    policy = MemoryPolicy.load(tmp_path / "r", embedder="minilm-l6-v2-int8")
    evals = rec.policy_requests[-8:]
    assert policy.library.texts() and all(shown(r) for r in evals)
    for req in evals[::2]:
        question = req.messages[-1].content
        bare = policy_messages(s.prompt, Item(id="x", question=question))
        assert policy.augment(bare) == list(req.messages)


def test_a_policy_loaded_from_a_run_with_worked_cases_deploys_them_as_evaluated(tmp_path):
    """Lessons and worked cases (namespace `tfgrpo`, solution rendering, the run's budget) reach a deployed
    prompt exactly as the run's held-out evaluation showed them."""
    from memrl.inject import policy_messages
    from memrl.policy import MemoryPolicy
    from memrl.types import Item

    rec = Recorder([NEAR_A, OTHER])
    s = spec(
        tmp_path, tf={"experiences": "both", "cases": {"mode": "similarity", "k": 2, "exploration": "none"}}
    )
    run_task(s, run_dir=tmp_path / "r", client=FunctionClient(rec))
    policy = MemoryPolicy.load(tmp_path / "r")
    evals = rec.policy_requests[-8:]
    assert all("Worked examples" in r.messages[0].content for r in evals), "the run must have shown cases"
    for req in evals[::2]:
        bare = policy_messages(s.prompt, Item(id="x", question=req.messages[-1].content))
        assert policy.augment(bare) == list(req.messages)
