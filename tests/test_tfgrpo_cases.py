"""Worked cases as experiences in Training-Free GRPO, and the guarantee that nothing held out is learned from."""

from __future__ import annotations

import json
import re

import pytest

from memrl.algos.tfgrpo.cases import LeakError, SolvedCases
from memrl.cases import Selection
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import CaseRetrievalSpec, spec_from_mapping
from memrl.testing import FunctionClient
from memrl.types import Completion, Item, Rollout, Verdict

LESSON = "When adding two numbers, write the bare sum only"


def recording_model(log: list[Request]):
    """Rollouts right for even seeds; the learner proposes one general lesson. Every request is logged."""

    def answer(req: Request, seed: int | None) -> str:
        log.append(req)
        user = req.messages[-1].content
        if req.json_schema or "Summarise" in user:
            if "Summarise" in user:
                return "The attempt added the two numbers."
            if "lessons" in req.json_schema.get("properties", {}):
                return json.dumps({"lessons": [LESSON]})
            return json.dumps(
                {
                    "operations": [
                        {"op": "ADD", "content": t} for t in re.findall(r"^- (When .*)$", user, re.M)
                    ]
                }
            )
        a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)", user)[-1])
        right = (seed or 0) % 2 == 0
        return f"{a} plus {b} is {a + b if right else a + b + 1}"

    return answer


def spec_for(tmp_path, **tf):
    data = tmp_path / "sums.jsonl"
    # every sum is distinct and no sum is a substring of another item's numbers, so a leaked answer is findable
    rows = [
        {"id": f"q{i}", "question": f"What is {i} + {1000 * i}?", "answer": str(1001 * i)}
        for i in range(1, 17)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "tfc", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 6, "seed": 3},
        "prompt": {"system": "You are a careful calculator."},
        "eval": {"k": 1, "max_tokens": 16},
        "tfgrpo": {"epochs": 1, "batch_size": 5, "group_size": 4, "steps_per_epoch": 2} | tf,
        "run": {"dir": str(tmp_path / "runs")},
        "diversity": {"embedder": "hash-64"},
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def _held_out(run: RunDir) -> list[dict]:
    return [{"q": r["question"], "a": r["answer"]} for r in run.read_jsonl("eval-epoch0.jsonl")]


@pytest.mark.parametrize("experiences", ["cases", "both"])
@pytest.mark.parametrize("mode", ["similarity", "q"])
def test_no_held_out_item_enters_memory_or_a_learning_prompt(tmp_path, experiences, mode):
    log: list[Request] = []
    cases = {"mode": mode, "k": 2} | ({"exploration": "epsilon", "epsilon": 0.5} if mode == "q" else {})
    res = run_task(spec_for(tmp_path, experiences=experiences, cases=cases),
                   client=FunctionClient(recording_model(log)))  # fmt: skip
    run = RunDir(res.run_dir)
    held = _held_out(run)
    assert len(held) == 6
    held_q = {h["q"] for h in held}
    held_a = [re.compile(rf"\b{h['a']}\b") for h in held]

    def leaks(text: str) -> list[str]:
        return [q for q in held_q if q in text] + [p.pattern for p in held_a if p.search(text)]

    eval_with_cases = 0
    for req in log:
        question = next((q for q in held_q if req.messages[-1].content.endswith(q)), None)
        if question is None:  # a learning call (rollout on a training item, or the learner)
            assert not leaks("\n".join(m.content for m in req.messages)), "held-out text in a learning prompt"
        else:  # held-out evaluation: the memory block (system) may only hold training material
            system = req.messages[0].content
            assert not leaks(system), f"held-out text in the memory shown for {question!r}"
            eval_with_cases += "Worked examples" in system
    assert eval_with_cases > 0, "the final evaluation never showed a worked case"

    stored = SolvedCases(
        run.path, CaseRetrievalSpec(mode="similarity"), embedder="hash-64", held_out=[], case_chars=999
    )
    texts = [c.task + " " + " ".join(c.trajectory) + " " + c.outcome for c in stored.store.all()]
    assert texts, "no case was learned"
    assert not any(leaks(t) for t in texts)
    learning = res.results["learning"]
    assert learning["cases"] == len(texts)
    assert (learning["lessons"] > 0) == (experiences == "both")
    if mode == "q":
        q = json.loads((run.path / "cases_q.json").read_text())
        assert q["applied"] and all(k.split(":")[1] not in {h["q"] for h in held} for k in q["applied"])


def test_recording_a_held_out_item_is_refused(tmp_path):
    held = Item(id="t1", question="What is 7 + 7000?", answer="7007")
    cases = SolvedCases(
        tmp_path, CaseRetrievalSpec(mode="similarity"), embedder="hash-64", held_out=[held], case_chars=500
    )
    r = Rollout(item_id="t1", sample=0, messages=[], completion=Completion(text="7007"),
                verdict=Verdict(reward=1.0, correct=True, extracted="7007"))  # fmt: skip
    with pytest.raises(LeakError):
        cases.record(1, held, [r], [cases.select(held, "s", explore=True)])
    same_text = Item(id="other-id", question="What is 7 +   7000?", answer="7007")
    with pytest.raises(LeakError):  # a duplicate of a held-out question under another id is refused too
        cases.record(1, same_text, [r], [cases.select(same_text, "s", explore=True)])
    assert len(cases) == 0


def test_shortest_correct_untruncated_solution_is_kept(tmp_path):
    item = Item(id="a", question="What is 2 + 2000?", answer="2002")
    cases = SolvedCases(
        tmp_path, CaseRetrievalSpec(mode="similarity"), embedder="hash-64", held_out=[], case_chars=500
    )

    def ro(i: int, text: str, correct: bool, truncated: bool = False) -> Rollout:
        c = Completion(text=text, finish_reason="length" if truncated else "stop")
        return Rollout(item_id="a", sample=i, messages=[], completion=c,
                       verdict=Verdict(reward=float(correct), correct=correct, extracted="2002"))  # fmt: skip

    group = [ro(0, "long working then 2002", True), ro(1, "2002", True, truncated=True), ro(2, "wrong 3", False),
             ro(3, "so 2002", True)]  # fmt: skip
    sel = cases.select(item, "s", explore=True)
    out = cases.record(1, item, group, [sel] * 4)
    assert out["written"]
    (case,) = cases.store.all()
    assert case.trajectory == ["so 2002"] and case.metadata["group_accuracy"] == 0.75
    assert not cases.record(2, item, [ro(0, "the long way round: 2002", True)], [sel])["written"]


def test_a_solution_over_case_chars_is_not_stored_nor_clipped(tmp_path):
    item = Item(id="b", question="What is 3 + 3000?", answer="3003")
    cases = SolvedCases(
        tmp_path, CaseRetrievalSpec(mode="similarity"), embedder="hash-64", held_out=[], case_chars=100
    )
    long = Rollout(item_id="b", sample=0, messages=[], completion=Completion(text="3 + 3000 " * 20 + "= 3003"),
                   verdict=Verdict(reward=1.0, correct=True, extracted="3003"))  # fmt: skip
    assert not cases.record(1, item, [long], [Selection()])["written"]
    assert len(cases) == 0


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing retries or swallows it."""


@pytest.mark.parametrize("mode", ["similarity", "q"])
def test_a_killed_step_reruns_on_the_memory_it_first_saw(tmp_path, mode):
    """Cases are written before a step's checkpoint; a kill there must not let the re-run see them."""
    cases = {"mode": mode, "k": 2} | ({"exploration": "epsilon", "epsilon": 0.5} if mode == "q" else {})
    spec = spec_for(tmp_path, experiences="both", cases=cases)
    whole = run_task(spec, run_dir=tmp_path / "whole", client=FunctionClient(recording_model([])))

    seen: list[Request] = []
    answer = recording_model(seen)

    def killing(req: Request, seed: int | None) -> str:
        learner = req.json_schema and not any("Summarise" in m.content for m in req.messages)
        if learner and sum(bool(r.json_schema) for r in seen) >= 2:  # step 1's cases are written by now
            raise Killed
        return answer(req, seed)

    with pytest.raises(Killed):
        run_task(spec, run_dir=tmp_path / "killed", client=FunctionClient(killing))
    written = SolvedCases(tmp_path / "killed", CaseRetrievalSpec(mode="similarity"), embedder="hash-64",
                          held_out=[], case_chars=999)  # fmt: skip
    assert len(written) > 0, "the kill came before step 1 wrote its cases: the test would prove nothing"
    again = run_task(
        spec, run_dir=tmp_path / "killed", resume=True, client=FunctionClient(recording_model([]))
    )
    step1 = json.loads((tmp_path / "killed" / "rollouts" / "step-0001.json").read_text())
    assert all(not r["cases"] for g in step1 for r in g), (
        "the re-run of step 1 saw cases it wrote before the kill"
    )
    a, b = RunDir(whole.run_dir), RunDir(again.run_dir)
    assert [r["samples"] for r in a.read_jsonl("eval-epoch1.jsonl")] == [
        r["samples"] for r in b.read_jsonl("eval-epoch1.jsonl")
    ]
    assert whole.results["learning"]["cases"] == again.results["learning"]["cases"]
