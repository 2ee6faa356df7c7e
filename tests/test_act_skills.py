"""Tool-using answers (`act:`) and verified skills: the loop keeps its step and token budgets and shows a
failing program to the model; a skill is kept only from a verified program on a training item, trusted only
after it solved another training item, reaches held-out items only when trusted, and is retired when it
keeps failing."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from typing import Any

from memrl.act import Actor, Preload, transcript
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.skills import Skill, SkillLibrary, calls, skill_source
from memrl.spec import ActSpec, SkillSpec, TaskSpec, spec_from_mapping
from memrl.tasks.sandbox import run_python
from memrl.testing import FunctionClient, ScriptedLLM
from memrl.types import Completion, Item, Message, ToolStep

REQ = Request.of([Message.system("Solve."), Message.user("What is 6 * 7?")], max_tokens=200)


def fence(code: str) -> str:
    return f"Let me compute.\n```python\n{code}\n```"


def run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------------------------------------ the tool loop


def test_a_program_that_prints_ends_the_answer_with_what_it_printed():
    llm = ScriptedLLM([fence("print(6 * 7)")])
    [c] = run(Actor(llm, ActSpec()).answer(REQ, salt="s"))
    assert c.text == "42"
    assert [s.ok for s in c.steps] == [True] and c.steps[0].code.strip() == "print(6 * 7)"
    assert "Python" in llm.requests[0][0].messages[-1].content  # the tool is described after the question
    llm.assert_consumed()


def test_a_failing_program_is_shown_to_the_model_not_raised():
    llm = ScriptedLLM([fence("print(6 / 0)"), fence("print(6 * 7)")])
    [c] = run(Actor(llm, ActSpec()).answer(REQ, salt="s"))
    assert c.text == "42"
    assert [s.ok for s in c.steps] == [False, True]
    second = llm.requests[1][0].messages
    assert second[-2].role == "assistant" and "6 / 0" in second[-2].content
    assert "ZeroDivisionError" in second[-1].content and "failed" in second[-1].content


def test_a_program_that_prints_nothing_is_a_failed_turn():
    llm = ScriptedLLM([fence("x = 42"), "The answer is 42."])
    [c] = run(Actor(llm, ActSpec()).answer(REQ, salt="s"))
    assert c.text == "The answer is 42." and [s.ok for s in c.steps] == [False, True]
    assert "printed nothing" in llm.requests[1][0].messages[-1].content


def test_the_loop_stops_at_max_turns():
    llm = ScriptedLLM(default=fence("raise SystemExit(3)"))
    [c] = run(Actor(llm, ActSpec(max_turns=3)).answer(REQ, salt="s"))
    assert len(llm.requests) == 3 and len(c.steps) == 3 and not any(s.ok for s in c.steps)
    assert c.usage.calls == 3


def test_the_loop_stops_at_its_token_budget_and_caps_the_next_turn():
    long = fence("import sys; sys.exit(1)") + " pad" * 60  # 68 scripted tokens a turn
    llm = ScriptedLLM(default=long)
    [c] = run(Actor(llm, ActSpec(max_turns=10, max_tokens=150)).answer(REQ, salt="s"))
    assert [r.max_tokens for r, _ in llm.requests] == [150, 150 - 68]  # then 14 left: no third turn
    assert c.usage.completion_tokens == 136 and len(c.steps) == 2


def test_with_finish_model_the_model_reads_the_output_and_answers():
    llm = ScriptedLLM([fence("print(6 * 7)"), "Answer: 42"])
    [c] = run(Actor(llm, ActSpec(finish="model")).answer(REQ, salt="s"))
    assert c.text == "Answer: 42"
    assert "42" in llm.requests[1][0].messages[-1].content
    assert "Final answer" not in transcript(c) and "Printed:\n42" in transcript(c)


def test_preloaded_code_is_defined_before_the_program_and_named_to_the_model():
    llm = ScriptedLLM([fence("print(mul(6, 7))")])
    pre = Preload(code="def mul(a, b):\n    return a * b\n", names=("mul(a, b)",))
    [c] = run(Actor(llm, ActSpec()).answer(REQ, salt="s", preload=pre))
    assert c.text == "42"
    assert "mul(a, b)" in llm.requests[0][0].messages[-1].content


def test_without_act_the_actor_is_the_plain_model_call():
    llm = ScriptedLLM([fence("print(6 * 7)")])
    [c] = run(Actor(llm, None).answer(REQ, salt="s"))
    assert c.steps is None and c.text.startswith("Let me compute")


# ------------------------------------------------------------------------------------------ skill source


PROGRAM = '''
import itertools

def helper(x):
    return x * 2

def solve(nums):
    """Double every number and add them."""
    return sum(helper(n) for n in nums)

def unused():
    return 0

data = [1, 2, 3]
print(solve(data))
'''


def test_a_skill_is_the_program_with_its_data_lifted_into_parameters():
    src = skill_source(PROGRAM)
    assert src is not None and src.entry == "print_answer" and src.signature == "print_answer(data)"
    assert set(src.names) == {"solve", "helper", "print_answer"} and "unused" not in src.code
    assert "import itertools" in src.code and "[1, 2, 3]" not in src.code
    ns: dict = {}
    exec(src.code, ns)  # the lifted program runs on another item's data and prints in its own format
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ns["print_answer"]([4, 5])
    assert out.getvalue() == "18\n"


def test_a_solver_whose_output_format_lives_at_top_level_keeps_it():
    grid = "def solve(g):\n    g[0][0] = 1\n    return True\n\ngrid = [[None, 2]]\n"
    main = "if __name__ == '__main__':\n    solve(grid)\n    for row in grid:\n        print(' '.join(map(str, row)))\n"
    src = skill_source(grid + main)
    assert src is not None and src.signature == "print_answer(grid)"
    assert "for row in grid:" in src.code and "__name__" not in src.code


def test_without_literal_data_a_skill_is_the_called_functions_and_their_helpers():
    src = skill_source(PROGRAM.replace("data = [1, 2, 3]\nprint(solve(data))", "print(solve([1, 2, 3]))"))
    assert src is not None and src.entry == "solve" and src.signature == "solve(nums)"
    assert set(src.names) == {"solve", "helper"} and src.doc.startswith("Double")
    # a function that reads the data as a global cannot be lifted: it falls back to the cut functions
    glob = "def total():\n    return sum(data)\n\ndata = [1, 2]\nprint(total())\n"
    assert skill_source(glob).entry == "total"
    assert skill_source("print(1 + 2)") is None  # straight-line code on inline data offers nothing
    assert skill_source("nums = [3, 4]\nprint(nums[0] * nums[1])").signature == "print_answer(nums)"
    assert skill_source("def f(:") is None


def test_a_program_that_redefines_a_preloaded_function_did_not_use_it():
    assert calls("print(solve([1]))", ["solve"]) == {"solve"}
    assert calls("def solve(x):\n    return 0\nprint(solve(1))", ["solve"]) == set()


# ------------------------------------------------------------------------------------------ skill library


def _item(i: int) -> Item:
    return Item(id=f"t{i}", question=f"Double and add {i}, {i + 1}", answer="0")


def _done(code: str, ok: bool = True) -> Completion:
    return Completion(text="6", steps=[ToolStep(text=fence(code), code=code, output="6", ok=ok)])


def lib(tmp_path, held_out=(), **cfg) -> SkillLibrary:
    return SkillLibrary(
        tmp_path / "skills", SkillSpec(enabled=True, **cfg), held_out=list(held_out), vectors=None
    )


def test_a_skill_is_kept_only_from_a_right_program_of_a_training_item(tmp_path):
    held = _item(9)
    sk = lib(tmp_path, held_out=[held])
    assert sk.learn(_item(1), [], _done(PROGRAM), correct=False, step=1) is None  # wrong answer
    assert sk.learn(_item(1), [], _done(PROGRAM, ok=False), correct=True, step=1) is None  # program failed
    assert sk.learn(held, [], _done(PROGRAM), correct=True, step=1) is None  # held out
    assert len(sk) == 0
    assert sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1) == "k1"
    assert sk.skills[0].status == "candidate"


def test_a_candidate_is_trusted_only_after_it_solved_another_training_item(tmp_path):
    sk = lib(tmp_path)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    assert sk.select(_item(5), trusted_only=True) == []  # never shown to a held-out item while a candidate
    shown = sk.select(_item(2), trusted_only=False)
    assert [s.id for s in shown] == ["k1"]
    assert sk.select(_item(1), trusted_only=False) == []  # not shown back to its own item
    sk.learn(_item(2), shown, _done("print(solve([2, 3]))"), correct=True, step=2)
    assert sk.skills[0].status == "trusted" and sk.skills[0].solved == ["t2"]
    assert [s.id for s in sk.select(_item(5), trusted_only=True)] == ["k1"]
    pre = sk.preload(sk.select(_item(5), trusted_only=True))
    assert "def solve" in pre.code and pre.names == ("print_answer(data)",)
    assert "print_answer(data)" in sk.render(sk.select(_item(5), trusted_only=True))


def test_a_lifted_skill_is_shown_with_its_origin_question_and_call(tmp_path):
    assert skill_source(PROGRAM).example == "print_answer(data=[1, 2, 3])"
    assert (
        skill_source("grid = [[1, None]]\nprint(grid)\ngrid = [[0]]").example
        == "print_answer(grid=[[1, None]])"
    )
    big = "nums = " + repr(list(range(400))) + "\nprint(sum(nums))"
    assert skill_source(big).example == ""  # too long to read as an example
    sk = lib(tmp_path)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    text = sk.render(sk.select(_item(2), trusted_only=False))
    assert _item(1).question in text and "print_answer(data=[1, 2, 3])" in text
    assert text.index("def print_answer") < text.index(_item(1).question) < text.index("print_answer(data=[1")


def test_a_skill_that_fails_more_often_than_it_solves_is_not_trusted(tmp_path):
    sk = lib(tmp_path, verify_items=1, retire_failures=10)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    for i, ok in [(2, False), (3, True), (4, False)]:
        sk.learn(
            _item(i), sk.select(_item(i), trusted_only=False), _done("print(solve([0]))"), correct=ok, step=2
        )
    # solved one other item (verify_items) but failed two: kept, shown while learning, never held out
    assert sk.skills[0].status == "candidate" and sk.select(_item(9), trusted_only=True) == []
    sk.learn(
        _item(5), sk.select(_item(5), trusted_only=False), _done("print(solve([0]))"), correct=True, step=2
    )
    assert sk.skills[0].status == "trusted"  # 2 solved, 2 failed
    sk.learn(
        _item(6), sk.select(_item(6), trusted_only=False), _done("print(solve([0]))"), correct=False, step=3
    )
    assert sk.skills[0].status == "candidate"  # its record fell below: back to candidate


def test_the_same_functions_from_another_item_verify_the_skill(tmp_path):
    sk = lib(tmp_path)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    sk.learn(_item(2), [], _done(PROGRAM.replace("[1, 2, 3]", "[4]")), correct=True, step=1)
    assert len(sk) == 1 and sk.skills[0].status == "trusted"


def test_a_skill_that_keeps_failing_is_retired(tmp_path):
    sk = lib(tmp_path, retire_failures=3)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    for i in (2, 3, 4):
        shown = sk.select(_item(i), trusted_only=False)
        sk.learn(_item(i), shown, _done("print(solve([0]))"), correct=False, step=2)
    assert sk.skills[0].status == "retired" and sk.select(_item(7), trusted_only=False) == []


def test_skills_resume_from_the_checkpoint_of_the_last_finished_step(tmp_path):
    sk = lib(tmp_path)
    sk.learn(_item(1), [], _done(PROGRAM), correct=True, step=1)
    sk.checkpoint(1)
    sk.learn(
        _item(2), sk.select(_item(2), trusted_only=False), _done("print(solve([1]))"), correct=True, step=2
    )
    again = lib(tmp_path)
    again.restore(1)
    assert len(again) == 1 and again.skills[0].solved == [] and again.skills[0].status == "candidate"


# ------------------------------------------------------------------------------------------ end to end


def toy_model(requests: list[Request]):
    """Training answers define and call `add_pair`; once it is preloaded the model calls it; the learner
    proposes nothing."""

    def answer(req: Request, seed: int | None) -> str:
        requests.append(req)
        user = req.messages[-1].content
        if req.json_schema or "Summarise" in user:
            if "Summarise" in user:
                return "It ran a program."
            return json.dumps(
                {"lessons": []} if "lessons" in req.json_schema.get("properties", {}) else {"operations": []}
            )
        a, b = map(int, re.findall(r"What is (\d+) \+ (\d+)", user)[-1])
        if "ready to call: add_pair(a, b)" in user:
            return fence(f"print(add_pair({a}, {b}))")
        return fence(f"def add_pair(a, b):\n    return a + b\n\nprint(add_pair({a}, {b}))")

    return answer


SUMS = [
    {"id": f"q{i}", "question": f"What is {i} + {1000 * i}?", "answer": str(1001 * i)} for i in range(1, 13)
]


def sums_spec(tmp_path, name: str = "skills", act: dict[str, Any] | None = None, **tfgrpo: Any) -> TaskSpec:
    """12 sums `i + 1000 i` (4 held out), skills on, 2 steps of `batch_size` × 2 rollouts."""
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in SUMS))
    return spec_from_mapping({
        "name": name, "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 4, "seed": 3},
        "eval": {"k": 1, "max_tokens": 64}, "act": {"max_turns": 2} if act is None else act,
        "tfgrpo": {"epochs": 1, "batch_size": 4, "group_size": 2, "steps_per_epoch": 2, "skills": {"enabled": True},
                   **tfgrpo},
        "run": {"dir": str(tmp_path / "runs")}, "diversity": {"embedder": "hash-64"},
    }, base_dir=tmp_path)  # fmt: skip


def test_end_to_end_a_run_learns_a_verified_skill_and_held_out_items_call_it(tmp_path):
    spec = sums_spec(tmp_path)
    requests: list[Request] = []
    res = run_task(spec, client=FunctionClient(toy_model(requests)))
    run = RunDir(res.run_dir)
    held = {r["item_id"] for r in run.read_jsonl("eval-epoch0.jsonl")}
    skills = json.loads(run.file("skills/skills.json").read_text())
    assert skills and all(s["origin"] not in held for s in skills)
    assert all(i not in held for s in skills for i in s["solved"] + s["failed"])
    assert any(s["status"] == "trusted" for s in skills)
    after = list(run.read_jsonl("eval-epoch1.jsonl"))
    assert all(r["verdicts"][0]["correct"] for r in after)
    # held-out answers after learning called the preloaded skill instead of defining it
    assert all(r["samples"][0]["steps"][0]["code"].startswith("print(add_pair(") for r in after)
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert metrics[-1]["skills_trusted"] >= 1


def test_library_show_lists_skills_with_their_verification_record(tmp_path):
    from typer.testing import CliRunner

    from memrl.cli import app

    spec = sums_spec(tmp_path, "skills-show", act={}, experiences="none")
    res = run_task(spec, client=FunctionClient(toy_model([])))
    shown = CliRunner().invoke(app, ["library", "show", str(res.run_dir)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "skills:" in shown.output and "trusted" in shown.output and "add_pair(a, b)" in shown.output


# ------------------------------------------------------------------------------------------ deployed


def _sums_run(tmp_path, requests: list[Request]):
    """A finished skills run on the sums task (its spec, run directory and questions by item id)."""
    spec = sums_spec(tmp_path, "skills-deploy")
    res = run_task(spec, client=FunctionClient(toy_model(requests)))
    return spec, RunDir(res.run_dir), {r["id"]: r["question"] for r in SUMS}


def test_a_policy_loaded_from_a_run_with_skills_gives_held_out_prompts_what_the_run_evaluated_with(tmp_path):
    """`MemoryPolicy.load(run)`: a held-out prompt gets byte-identical messages (the trusted skills rendered
    after the memory, the tool note naming them) and the sandbox code the run's evaluation preloaded."""
    from memrl.inject import policy_messages
    from memrl.policy import MemoryPolicy

    requests: list[Request] = []
    spec, run, questions = _sums_run(tmp_path, requests)
    held = [r["item_id"] for r in run.read_jsonl("eval-epoch1.jsonl")]
    policy = MemoryPolicy.load(run.path)
    tool = Actor(ScriptedLLM([]), spec.act)  # only its tool note: what the run's evaluation appended
    for item_id in held:
        q = questions[item_id]
        seen = [r for r in requests if r.messages[-1].content.startswith(q)][-1]  # eval-epoch1, first turn
        assert "ready to call: add_pair(a, b)" in seen.messages[-1].content, "the run must have preloaded it"
        pre = policy.preload(q)
        assert pre.names == ("add_pair(a, b)",) and "def add_pair(a, b)" in pre.code
        assert policy.memory(q).skills
        mine = policy.augment(policy_messages(spec.prompt, Item(id="x", question=q)))
        assert list(tool.with_tool(Request.of(mine, max_tokens=64), pre).messages) == list(seen.messages)
        ok = run_python(f"{pre.code}\n\nprint(add_pair(2, 3))")  # the app's sandbox: the skill runs
        assert ok.stdout.strip() == "5"


def test_compare_preloads_the_skills_a_run_shows(tmp_path):
    from memrl.compare import compare_memories

    spec, run, _ = _sums_run(tmp_path, [])
    out = tmp_path / "cmp"
    res = compare_memories(spec, ["none", str(run.path)], out=out, client=FunctionClient(toy_model([])))
    none, deployed = ([json.loads(x) for x in (out / f"{c.label}.jsonl").open()] for c in res.conditions)
    assert res.conditions[1].score.mean_at_k == 1.0
    assert all(r["samples"][0]["steps"][0]["code"].startswith("def add_pair") for r in none)
    # the memory names the skill and the sandbox defines it: the model calls it without writing it
    assert all(r["samples"][0]["steps"][0]["code"].startswith("print(add_pair(") for r in deployed)


def _skill(id: str, name: str, question: str, status: str) -> Skill:
    return Skill(id=id, name=name, signature=f"{name}(x)", code=f"def {name}(x):\n    return x\n", names=[name],
                 origin=f"t-{id}", question=question, step=1, status=status, solved=["t9"])  # fmt: skip


def test_a_policy_deploys_only_trusted_skills_chosen_by_similarity(tmp_path):
    from memrl.policy import MemoryPolicy
    from memrl.spec import TFGRPOSpec

    (tmp_path / "skills").mkdir()
    skills = [
        _skill("k1", "add_up", "What is 3 + 4?", "trusted"),
        _skill("k2", "flip_text", "Reverse the string abc", "trusted"),
        _skill("k3", "fresh", "Reverse the string abc", "candidate"),
        _skill("k4", "stale", "Reverse the string abc", "retired"),
    ]
    (tmp_path / "skills" / "skills.json").write_text(json.dumps([s.model_dump() for s in skills]))
    wide = TFGRPOSpec(skills=SkillSpec(enabled=True, k=5))
    policy = MemoryPolicy(skills=tmp_path, tfgrpo=wide, embedder="hash-64")
    shot = policy.memory("Reverse the string xyz")
    assert shot.skills == ["k2", "k1"], "trusted only, the most similar first"
    assert "flip_text(x)" in shot.text and "fresh" not in shot.text and "stale" not in shot.text
    assert policy.preload("Reverse the string xyz").names == ("flip_text(x)", "add_up(x)")
    one = MemoryPolicy(skills=tmp_path / "skills" / "skills.json", embedder="hash-64")  # k = 1
    assert one.preload("Reverse the string xyz").names == ("flip_text(x)",)
    assert one.preload("What is 8 + 9?").names == ("add_up(x)",)
    assert [m["content"] for m in one.augment([{"role": "user", "content": "What is 8 + 9?"}])][0].endswith(
        "```"
    ), "the skill block goes into the system prompt"
    deployed = SkillLibrary.deployed(tmp_path / "skills" / "skills.json", wide.skills)
    assert [s.id for s in deployed.skills] == ["k1", "k2"]
    live = SkillLibrary(tmp_path / "live", wide.skills, held_out=[], vectors=None)
    live.skills = skills  # a library still learning: its candidates stay out of deployed prompts too
    learning = MemoryPolicy(skills=live, embedder="hash-64")
    assert learning.memory("Reverse the string xyz").skills == ["k2", "k1"]
    assert MemoryPolicy().preload("x") == Preload() and MemoryPolicy().memory("x").skills == []
    assert asyncio.run(one.apreload("What is 8 + 9?")) == one.preload("What is 8 + 9?")


def test_a_deployed_policy_counts_each_answer_for_the_skills_its_program_called(tmp_path):
    """`record(..., program=)`: a shown skill the program called is counted as in learning; one that fails
    more often than it solves stops being deployed, and `save` keeps its record for the next load."""
    from memrl.policy import MemoryPolicy

    (tmp_path / "skills").mkdir()
    (tmp_path / "skills" / "skills.json").write_text(
        json.dumps([_skill("k1", "add_up", "What is 3 + 4?", "trusted").model_dump()])
    )
    policy = MemoryPolicy(skills=tmp_path, embedder="hash-64")
    q = "What is 8 + 9?"
    assert policy.memory(q).skills == ["k1"]
    # a program that defines its own add_up did not use the skill: nothing counted
    out = policy.record(q, "17", 1.0, program="def add_up(x):\n    return x\nprint(add_up(17))")
    assert out.skills == [] and policy.skill_library.skills[0].solved == ["t9"]
    policy.memory(q)
    assert policy.record(q, "16", 0.0, program="print(add_up(16))").skills == ["k1"]
    assert policy.skill_library.skills[0].status == "trusted"  # 1 solved, 1 failed
    policy.memory(q)
    policy.record(q, "15", 0.0, program="print(add_up(15))")
    skill = policy.skill_library.skills[0]
    assert len(skill.failed) == 2 and skill.failed[0].startswith("deployed:") and skill.status == "candidate"
    assert policy.memory(q).skills == [] and policy.preload(q).names == ()  # no longer deployed
    policy.save(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "skills" / "skills.json").read_text())
    assert saved[0]["status"] == "candidate" and len(saved[0]["failed"]) == 2
    assert MemoryPolicy(skills=tmp_path / "saved", embedder="hash-64").memory(q).skills == []


def test_the_gate_puts_back_the_trust_of_a_skill_that_makes_validation_worse(tmp_path):
    """With the no-harm gate on, a step that makes a skill trusted is judged like a lesson edit: here the
    model misuses the skill once its record reads as proven, so validation gets worse, the skill goes back to
    candidate (its verification record kept) and no held-out item is shown it."""
    spec = sums_spec(tmp_path, act={"max_turns": 1}, batch_size=3, experiences="none",
                     gate={"enabled": True, "validation": 2})  # fmt: skip
    base = toy_model([])

    def answer(req: Request, seed: int | None) -> str:
        text = base(req, seed)
        proven = re.search(r"verified on ([2-9]|\d\d) training problems", req.messages[0].content)
        return text.replace("))", ") + 1)") if proven and "print(add_pair(" in text else text

    res = run_task(spec, client=FunctionClient(answer))
    run = RunDir(res.run_dir)
    rejected = [e for e in run.read_jsonl("events.jsonl") if e["event"] == "gate_rejected"]
    assert rejected and rejected[0]["skills_reset"] and rejected[0]["after"] < rejected[0]["before"]
    skills = {s["id"]: s for s in json.loads(run.file("skills/skills.json").read_text())}
    reset = skills[rejected[-1]["skills_reset"][0]]
    # trust put back and the record kept; later rollouts that misused it may then retire it
    assert reset["status"] in ("candidate", "retired") and reset["solved"]
    after = list(run.read_jsonl("eval-epoch1.jsonl"))
    assert all(r["verdicts"][0]["correct"] for r in after)
    assert not any(r["samples"][0]["steps"][0]["code"].startswith("print(add_pair(") for r in after)
