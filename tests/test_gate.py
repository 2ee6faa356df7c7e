"""The no-harm gate: a step whose library scores lower on a validation split of the training data is rolled
back; validation items come from training only and never reach the rollouts; its calls are counted apart."""

from __future__ import annotations

import json
import re

import pytest

from memrl.algos.evaluate import item_scores
from memrl.algos.tfgrpo.gate import carve
from memrl.errors import ConfigError
from memrl.library import Library
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import GateSpec, spec_from_mapping
from memrl.testing import FunctionClient
from memrl.types import Item

GOOD = "When adding two numbers, check the units digit of the sum"
POISON = "When a sum is asked, add one more to the total before answering"


def spec(tmp_path, lessons_gate=True):
    data = tmp_path / "sums.jsonl"
    rows = [{"id": f"q{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
            for a in range(1, 7) for b in (a + 2, a + 4)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return spec_from_mapping({
        "name": "gate", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 4, "seed": 1},
        "prompt": {"system": "You are a careful calculator."}, "eval": {"k": 2, "max_tokens": 8},
        "tfgrpo": {"epochs": 1, "batch_size": 3, "group_size": 4, "steps_per_epoch": 2,
                   "gate": {"enabled": lessons_gate, "validation": 3}},
        "diversity": {"embedder": "hash-64"},
    }, base_dir=tmp_path)  # fmt: skip


def model(step_lessons: dict[int, list[str]], seen: list[str]):
    """Right on 3 seeds in 4, always wrong with POISON in the prompt; the learner proposes `step_lessons[n]`
    at its n-th extraction call."""
    calls = {"extract": 0}

    def answer(req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        props = (req.json_schema or {}).get("properties", {})
        if "Summarise" in user:
            return "It added."
        if "lessons" in props:
            calls["extract"] += 1
            return json.dumps({"lessons": step_lessons.get(calls["extract"], [])})
        if "verdicts" in props:
            return json.dumps({"verdicts": ["different"] * user.count("Pair ")})
        if "operations" in props:
            return json.dumps({"operations": [{"op": "ADD", "content": t}
                                              for t in re.findall(r"^- (When .*)$", user, re.M)]})  # fmt: skip
        seen.append(user)
        a, b = map(int, re.findall(r"\d+", user)[:2])
        right = (seed is None or seed % 4 != 0) and POISON not in req.messages[0].content
        return str(a + b if right else a + b + 1)

    return answer


def test_a_step_that_makes_validation_worse_is_rolled_back_and_shown(tmp_path):
    from typer.testing import CliRunner

    from memrl.cli import app

    seen: list[str] = []
    lessons = {i: [POISON] for i in range(1, 50)}
    res = run_task(spec(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(model(lessons, seen)))
    run = RunDir(tmp_path / "r")
    lib = Library.load(run.path)
    assert POISON not in lib.texts(), "the poisoned step must be rolled back"
    assert any(x.text == POISON and x.status == "active" for v in lib.versions
               for x in lib.lessons_at(v).values()) is False  # fmt: skip
    rejected = [e for e in run.read_jsonl("events.jsonl") if e["event"] == "gate_rejected"]
    assert rejected and rejected[0]["added"] == [POISON] and rejected[0]["after"] < rejected[0]["before"]
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert metrics[0]["gate"]["accepted"] is False and metrics[0]["lessons"] == 0
    assert run.read_json("usage.json")["gate"]["calls"] > 0, "the gate's calls have their own phase"
    shown = CliRunner().invoke(app, ["library", "show", str(run.path)])
    assert shown.exit_code == 0 and "rejected by the no-harm gate" in shown.stdout
    assert res.results["learning"]["paired"]["diff"] == 0, "nothing kept, nothing changed on held-out"


def test_a_harmless_step_is_kept_and_validation_never_reaches_the_rollouts(tmp_path):
    seen: list[str] = []
    s = spec(tmp_path)
    run_task(s, run_dir=tmp_path / "r", client=FunctionClient(model({1: [GOOD]}, seen)))
    run = RunDir(tmp_path / "r")
    assert GOOD in Library.load(run.path).texts()
    gate_items = {r["item_id"] for r in run.read_jsonl("gate/step-0001-after.jsonl")}
    rollout_items = {
        r["item_id"] for s_ in (1, 2) for g in run.read_json(f"rollouts/step-{s_:04d}.json") for r in g
    }
    held_out = {r["item_id"] for r in run.read_jsonl("eval-epoch0.jsonl")}
    assert len(gate_items) == 3 and not gate_items & rollout_items and not gate_items & held_out


def test_carving_is_seeded_and_leaves_items_to_learn_from():
    items = [Item(id=f"i{n}", question=f"q{n}", answer="1") for n in range(8)]
    train, val = carve(items, GateSpec(enabled=True, validation=0.25), seed=3)
    assert (
        len(val) == 2 and len(train) == 6 and (train, val) == carve(items, GateSpec(validation=0.25), seed=3)
    )
    with pytest.raises(ConfigError, match="leaving none to learn from"):
        carve(items, GateSpec(validation=8), seed=3)


def test_check_runs_before_and_after_side_by_side_and_replays_unchanged_prompts(tmp_path):
    """Items whose memory the step changed are evaluated alongside `before`; an unchanged prompt's `after`
    still waits for `before` and is answered from the cache (no second call)."""
    import asyncio

    from memrl.algos.tfgrpo.gate import check
    from memrl.context import RunContext
    from memrl.llm.cache import ResponseCache
    from memrl.llm.managed import ManagedLLM
    from memrl.tasks.base import Split
    from memrl.tasks.verifiers import ExactVerifier

    events: list[str] = []

    class Client:
        model, native_n, calls = "slow", False, 0

        async def complete_once(self, request: Request, n: int = 1, seed: int | None = None):
            from memrl.types import Completion, Usage

            Client.calls += 1
            tag = "new" if any("NEW LESSON" in m.content for m in request.messages) else "old"
            events.append(f"start:{tag}")
            await asyncio.sleep(0.01)
            events.append(f"end:{tag}")
            a, b = map(int, re.findall(r"\d+", request.messages[-1].content)[:2])
            text = str(a + b if tag == "old" else a + b + 1)
            return [Completion(text=text, finish_reason="stop", usage=Usage(calls=1), model="slow")]

    s = spec(tmp_path)
    items = [Item(id=f"v{a}", question=f"What is {a} + 1?", answer=str(a + 1)) for a in range(4)]
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    llm = ManagedLLM(Client(), cache=ResponseCache(tmp_path / "cache.db"), max_concurrency=32)
    ctx = RunContext(s, run, llm, Split(train=items, test=[]), ExactVerifier())
    changed = {"v1", "v3"}
    res = asyncio.run(check(ctx, items, GateSpec(enabled=True, k=2), step=1, before=lambda it: "",
                            after=lambda it: "NEW LESSON" if it.id in changed else ""))  # fmt: skip
    k = 2
    assert Client.calls == len(items) * k + len(changed) * k, "unchanged prompts are replayed, not re-asked"
    assert events.index("start:new") < max(i for i, e in enumerate(events) if e == "end:old"), "side by side"
    assert (res.before, res.after, res.accepted) == (1.0, 0.5, False)
    after = {r["item_id"]: r for r in run.read_jsonl("gate/step-0001-after.jsonl")}
    assert sorted(after) == [it.id for it in items]
    assert all(c["cached"] for i in ("v0", "v2") for c in after[i]["samples"])
    assert not any(c["cached"] for i in changed for c in after[i]["samples"])


def test_the_gate_also_rolls_back_worked_cases_that_make_validation_worse(tmp_path):
    """The gate judges every kind of memory a validation item gets, not only lessons: a model that copies the
    answer of the worked example in its prompt (as SmolLM2-135M did on sums) loses validation items once cases
    are written, so the step is rolled back and case memory is left empty."""
    s = spec(tmp_path)
    s = s.model_copy(update={"tfgrpo": s.tfgrpo.model_copy(update={"experiences": "cases"})})

    def answer(req: Request, seed: int | None) -> str:
        system = req.messages[0].content
        shown = re.search(r"Solution: (\d+)", system)
        if shown:
            return shown.group(1)  # copies the example's answer
        a, b = map(int, re.findall(r"\d+", req.messages[-1].content)[:2])
        return str(a + b)

    run_task(s, run_dir=tmp_path / "r", client=FunctionClient(answer))
    run = RunDir(tmp_path / "r")
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert metrics[0]["cases_written"] > 0 and metrics[0]["gate"]["accepted"] is False
    rejected = [e for e in run.read_jsonl("events.jsonl") if e["event"] == "gate_rejected"]
    assert rejected[0]["cases_removed"] == metrics[0]["cases_written"] and rejected[0]["after"] < 1.0
    assert json.loads((run.path / "cases" / "step-0002.json").read_text())["cases"] == []
    from typer.testing import CliRunner

    from memrl.cli import app

    shown = CliRunner().invoke(app, ["library", "show", str(run.path)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and f"{rejected[0]['cases_removed']} cases removed" in shown.stdout
    held_out = item_scores(run, "eval-epoch1")
    assert held_out and set(held_out.values()) == {1.0}, "no case reached a held-out prompt"
