"""Memento end to end with a deterministic model double (FunctionClient) through the real run directory, cache,
memory (chroma on disk) and tools: learning writes memory, later episodes read it, errors and budgets are
handled, memory persists across processes, and a killed run resumes to the same result."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from memrl.cases import QModel
from memrl.memory import open_memory
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import spec_from_mapping
from memrl.testing import FunctionClient

# The scripted agent, as source so a second process can use the very same one.
MODEL_SRC = textwrap.dedent(r'''
    import json, re

    class Killed(BaseException):
        """Stands in for SIGKILL."""

    def agent_model(bad_tool=False, kill_at=None, seen=None):
        seen = seen if seen is not None else []

        def answer(req, seed):
            user = req.messages[-1].content
            schema = json.dumps(req.json_schema or {})
            seen.append(user)
            if kill_at and len(seen) == kill_at:
                raise Killed()
            if '"subtasks"' in schema:
                return json.dumps({"subtasks": [{"id": "s1", "goal": "compute the sum", "depends_on": []},
                                                {"id": "s2", "goal": "report the sum", "depends_on": ["s1"]}]})
            if req.json_schema:
                steps = re.findall(r"^- (?:calculator|finish)\(.*-> (.*)$", user, re.M)
                if steps:
                    return json.dumps({"tool": "finish", "args": {"result": "sum is " + steps[-1].split()[-1]}})
                expr = re.search(r"Task: What is (.+?)\?", user).group(1)
                return json.dumps({"tool": "calculator", "args": {"expression": expr + (" +" if bad_tool else "")}})
            nums = re.findall(r"sum is (\S+)", user)
            return nums[-1] if nums else "unknown"

        return answer
''')
ns: dict = {}
exec(MODEL_SRC, ns)
agent_model, Killed = ns["agent_model"], ns["Killed"]


def spec_for(tmp_path, **memento):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "sums.jsonl"
    rows = [
        {"id": f"q{a}", "question": f"What is {a} + {a * 7}?", "answer": str(a * 8)} for a in range(11, 19)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "mt", "algorithm": "memento", "model": "local",
        "data": {"source": str(data), "test_size": 3, "seed": 0},
        "verifier": {"kind": "math"},
        "memento": {"embedder": "hash-64", "tools": ["calculator"], "cases": {"mode": "q", "k": 2}} | memento,
        "run": {"dir": str(tmp_path / "runs")},
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def test_learns_memory_and_reads_it(tmp_path):
    seen: list[str] = []
    res = run_task(spec_for(tmp_path), client=FunctionClient(agent_model(seen=seen)))
    assert res.status == "finished"
    assert res.results["train"]["episodes"] == 5 and res.results["train"]["success_rate"] == 1.0
    assert res.results["eval"]["episodes"] == 3 and res.results["eval"]["success_rate"] == 1.0
    assert res.results["memory"] == {"experience": 0, "cases": 5, "subtasks": 10, "tools": 10}
    run = RunDir(res.run_dir)
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert [m["phase"] for m in metrics] == ["train"] * 5 + ["eval"] * 3
    assert metrics[0]["cases"] == 0 and all(m["cases"] == 2 for m in metrics[2:])
    # the Q distribution is logged every step, and Q moves towards the (all-successful) rewards
    assert all("q_pool" in m and "q_bias" in m and "q_theta" in m for m in metrics)
    assert metrics[4]["q_bias"]["n"] >= 2 and metrics[4]["q_bias"]["mean"] > 0
    assert metrics[-1]["td_errors"] == []  # held-out episodes read memory, they do not learn
    # positive cases went into the planner prompt; tool memory reached the executor
    plans = [u for u in seen if "Write at most" in u]
    assert "went well" not in plans[0] and "Similar past tasks that went well" in plans[-1]
    assert any("tool calculator: worked" in u for u in seen if "Current subtask" in u)
    mem = open_memory(run.file("memory"), embedder="hash-64", namespace="memento")
    case = mem.cases.all()[0]
    assert case.success and case.reward == 1.0 and case.plan.startswith("s1: compute the sum")
    assert case.trajectory[0].startswith("s1: calculator(expression=")
    calls = mem.tools.all(where={"subtask_id": f"{case.id}-0"})
    assert [c.tool for c in calls] == ["calculator"] and calls[0].error is None


def test_tool_errors_go_back_to_the_executor(tmp_path):
    seen: list[str] = []
    res = run_task(
        spec_for(tmp_path, cases={"mode": "off"}),
        client=FunctionClient(agent_model(bad_tool=True, seen=seen)),
    )
    assert res.status == "finished" and res.results["eval"]["success_rate"] == 0.0
    run = RunDir(res.run_dir)
    m = next(run.read_jsonl("metrics.jsonl"))
    assert m["tool_calls"] == 2 and m["tool_errors"] == 2
    assert any("-> ERROR invalid" in u or "-> ERROR ValueError" in u for u in seen)
    mem = open_memory(run.file("memory"), embedder="hash-64", namespace="memento")
    errors = [c.error for c in mem.tools.all()]
    assert errors and all(e and "not an arithmetic expression" in e for e in errors)
    assert all(not s.success for s in mem.subtasks.all())


@pytest.mark.parametrize(("limit", "stop"), [({"max_steps": 1}, "steps"), ({"max_tokens": 40}, "tokens")])
def test_episode_budgets(tmp_path, limit, stop):
    res = run_task(spec_for(tmp_path, **limit), client=FunctionClient(agent_model()))
    metrics = list(RunDir(res.run_dir).read_jsonl("metrics.jsonl"))
    assert {m["stop"] for m in metrics} == {stop}
    if stop == "steps":
        assert all(m["tool_calls"] == 1 for m in metrics)


def test_memory_persists_across_processes(tmp_path):
    shared = tmp_path / "shared-memory"
    first = run_task(
        spec_for(tmp_path, memory=str(shared), evaluate=False), client=FunctionClient(agent_model())
    )
    assert first.results["memory"]["cases"] == 5
    script = tmp_path / "second.py"
    script.write_text(
        MODEL_SRC
        + textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from memrl.memory import open_memory
        from memrl.runner import run_task
        from memrl.spec import spec_from_mapping
        from memrl.testing import FunctionClient
        from memrl.cases import QModel
        mem = open_memory({str(shared)!r}, embedder="hash-64", namespace="memento")
        counts = {{k: s.count() for k, s in mem.stores().items()}}
        q = QModel.load(__import__("pathlib").Path({str(shared)!r}) / "memento_q_memento.json")
        raw = json.loads(sys.argv[1])
        seen = []
        res = run_task(spec_from_mapping(raw), client=FunctionClient(agent_model(seen=seen)))
        first_plan = next(u for u in seen if "Write at most" in u)
        print(json.dumps({{"counts": counts, "q_applied": len(q.applied), "results": res.results,
                          "cases_in_first_plan": "went well" in first_plan}}))
    """)
    )
    raw = spec_for(tmp_path, memory=str(shared), train_episodes=0).model_dump(mode="json", exclude_none=True)
    raw["run"]["name"] = "second"
    out = subprocess.run(
        [sys.executable, str(script), json.dumps(raw)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["counts"] == {"experience": 0, "cases": 5, "subtasks": 10, "tools": 10}
    assert got["q_applied"] == 4  # episodes 2..5 had cases to learn about
    assert got["cases_in_first_plan"] and got["results"]["eval"]["success_rate"] == 1.0


def _summary(run_dir):
    run = RunDir(run_dir)
    metrics = [{k: m[k] for k in ("episode", "phase", "reward", "cases", "q_selected", "td_errors")}
               for m in run.read_jsonl("metrics.jsonl")]  # fmt: skip
    q = QModel.load(run.file("memento_q.json"))
    return metrics, q.bias, q.theta.tolist(), q.applied


@pytest.mark.parametrize("kill_at", [9, 23])
def test_killed_run_resumes_to_the_same_result(tmp_path, kill_at):
    whole = run_task(spec_for(tmp_path / "a"), client=FunctionClient(agent_model()))
    spec = spec_for(tmp_path / "b")
    spec.run.name = "killed"
    with pytest.raises(Killed):
        run_task(spec, client=FunctionClient(agent_model(kill_at=kill_at)))
    resumed = run_task(spec, resume=True, client=FunctionClient(agent_model()))
    assert _summary(resumed.run_dir) == _summary(whole.run_dir)
    untimed = lambda r: {k: {f: v for f, v in x.items() if f != "items_per_s"} for k, x in r.items()}  # noqa: E731
    assert untimed(resumed.results) == untimed(whole.results)


def test_kill_while_committing_finishes_the_commit(tmp_path, monkeypatch):
    whole = run_task(spec_for(tmp_path / "a"), client=FunctionClient(agent_model()))
    spec = spec_for(tmp_path / "b")
    spec.run.name = "killed"
    calls = {"n": 0}
    real_save = QModel.save

    def save(self, path):
        calls["n"] += 1
        if calls["n"] == 3:  # episode 3's memory is written, its Q and state are not
            raise Killed()
        real_save(self, path)

    monkeypatch.setattr(QModel, "save", save)
    with pytest.raises(Killed):
        run_task(spec, client=FunctionClient(agent_model()))
    monkeypatch.setattr(QModel, "save", real_save)
    run = RunDir(tmp_path / "b" / "runs" / "killed")
    assert run.file("pending.json").exists()
    client = FunctionClient(agent_model())
    resumed = run_task(spec, resume=True, client=client)
    assert _summary(resumed.run_dir) == _summary(whole.run_dir)
    assert not run.file("pending.json").exists()


def skill_agent(seen: list[str]):
    """Plans one subtask; calls `add_pair` when the python tool says it is defined, else adds in plain
    Python; finishes with what the program printed."""

    def answer(req, seed):
        user = req.messages[-1].content
        seen.append(user)
        if '"subtasks"' in json.dumps(req.json_schema or {}):
            return json.dumps({"subtasks": [{"id": "s1", "goal": "compute the sum", "depends_on": []}]})
        if req.json_schema:
            done = re.findall(r"^- python\(.*-> (.*)$", user, re.M)
            if done:
                return json.dumps({"tool": "finish", "args": {"result": "sum is " + done[-1].split()[-1]}})
            a, b = re.search(r"Task: What is (\d+) \+ (\d+)\?", user).groups()
            code = f"print(add_pair({a}, {b}))" if "add_pair(a, b)" in user else f"print({a} + {b})"
            return json.dumps({"tool": "python", "args": {"code": code}})
        nums = re.findall(r"sum is (\S+)", user)
        return nums[-1] if nums else "unknown"

    return answer


def test_memento_deploys_a_runs_trusted_skills_in_the_python_tool(tmp_path):
    from memrl.skills import Skill

    def skill(id, name, status):
        return Skill(id=id, name=name, signature=f"{name}(a, b)", code=f"def {name}(a, b):\n    return a + b\n",
                     names=[name], origin="t1", question="What is 1 + 2?", step=1, status=status)  # fmt: skip

    (tmp_path / "learned" / "skills").mkdir(parents=True)
    (tmp_path / "learned" / "skills" / "skills.json").write_text(
        json.dumps(
            [
                skill("k1", "fresh_sum", "candidate").model_dump(),
                skill("k2", "add_pair", "trusted").model_dump(),
            ]
        )
    )
    seen: list[str] = []
    spec = spec_for(tmp_path, tools=["python"], cases={"mode": "off"}, skills="learned", skills_k=2)
    res = run_task(spec, client=FunctionClient(skill_agent(seen)))
    assert res.results["train"]["success_rate"] == 1.0 and res.results["eval"]["success_rate"] == 1.0
    calls = [
        c for r in RunDir(res.run_dir).read_jsonl("episodes.jsonl") for s in r["subtasks"] for c in s["steps"]
    ]
    assert calls and all(c["call"]["args"]["code"].startswith("print(add_pair(") and c["ok"] for c in calls)
    assert not any("fresh_sum" in u for u in seen), "a candidate skill reached an episode"
    with pytest.raises(Exception, match="python tool"):
        spec_for(tmp_path / "bad", skills="learned")  # calculator only
