"""Every task file in tasks/ survives a kill: run it (shrunk, with a scripted model) without interruption, run
it again and kill it part-way, `memrl resume` it (`resume_task`), and the resumed run ends with the same
scores, per-item evaluation rows, library or memory, and paid no call twice.

The scripted model answers each task's items from the data itself (right for even seeds, wrong for odd), in
the form the task's verifier judges: a boxed number for math, the whole function for HumanEval, plans and
tool calls in Memento's JSON, commands the TextWorld game admits. `client=` replaces the task's model, so
the hosted-model task files run offline too. A new task file is picked up by the glob.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from memrl.library import Library
from memrl.llm.base import Request
from memrl.memory import open_memory
from memrl.runner import resume_task, run_task
from memrl.runs import RunDir
from memrl.spec import TaskSpec, load_spec
from memrl.tasks.datasets import load_items
from memrl.testing import FunctionClient
from memrl.testing.faults import toy_answer
from memrl.types import Item

ROOT = Path(__file__).resolve().parents[1]
TASKS = sorted((ROOT / "tasks").glob("*.yaml"))


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing retries or swallows it."""


#: Overrides that make each algorithm's run take seconds with a scripted model.
SMALL = {
    "evaluate": ["data.size=8", "data.test_size=4", "eval.k=1", "eval.max_tokens=64"],
    "tfgrpo": ["data.size=16", "data.test_size=4", "eval.k=1", "eval.max_tokens=64",
               "tfgrpo.epochs=1", "tfgrpo.steps_per_epoch=2", "tfgrpo.batch_size=2", "tfgrpo.group_size=2"],
    "memento": ["data.size=6", "data.test_size=2", "memento.max_subtasks=2", "memento.max_steps=4",
                "memento.max_cycles=1", "memento.max_replans=1"],
}  # fmt: skip
TEXTWORLD = ["data.params.train=2", "data.params.test=1", "data.params.max_moves=8", "memento.max_steps=4",
             "memento.max_cycles=1", "memento.min_subtask_steps=1", "memento.max_subtask_steps=2"]  # fmt: skip


def small_spec(task: Path, games: Path, extra: list[str] | None = None) -> TaskSpec:
    spec = load_spec(task)
    if spec.data.source.startswith("textworld"):
        over = [*TEXTWORLD, f"data.params.cache_dir={games}"]
    else:
        over = SMALL[spec.algorithm]
    return load_spec(task, [*over, *(extra or [])])


class Oracle:
    """A pure function of the request and the seed that answers every task file's calls."""

    def __init__(self, items: list[Item], code: bool) -> None:
        self.items = sorted(items, key=lambda x: -len(x.question))  # a longer question first: no prefix match
        self.code = code

    def item_in(self, text: str) -> Item | None:
        found = [(text.find(q), x) for x in self.items if (q := x.question.strip()) and q in text]
        return min(found, key=lambda f: f[0])[1] if found else None

    def solve(self, text: str, seed: int | None) -> str:
        item = self.item_in(text)
        right = (seed or 0) % 2 == 0
        if item is None:
            return "I do not know."
        if self.code:
            body = item.answer if right else "    return None\n"
            return f"```python\n{item.question}{body}\n```"
        return f"The answer is \\boxed{{{item.answer if right else 'none'}}}."

    def act(self, req: Request, user: str) -> str:
        schema = json.dumps(req.json_schema)
        commands = re.search(r'"command": \{"type": "string", "enum": (\[.*?\])\}', schema)
        if commands:  # a game: a command it admits now, picked by the prompt's text
            options = json.loads(commands.group(1))
            return json.dumps({"tool": "act", "args": {"command": options[len(user) % len(options)]}})
        done = re.findall(r"^- (?:calculator|finish)\(.*-> (.*)$", user, re.M)
        item = self.item_in(user)
        if (
            done
            or item is None
            or '"calculator"' not in schema
            or not re.fullmatch(r"-?\d+", item.answer or "")
        ):
            return json.dumps(
                {"tool": "finish", "args": {"result": "result " + (done[-1] if done else "none")}}
            )
        return json.dumps({"tool": "calculator", "args": {"expression": f"{item.answer} + 0"}})

    def __call__(self, req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        schema = json.dumps(req.json_schema or {})
        if '"subtasks"' in schema:
            return json.dumps({"subtasks": [{"id": "s1", "goal": "work on the task", "depends_on": []},
                                            {"id": "s2", "goal": "report the result", "depends_on": ["s1"]}]})  # fmt: skip
        if '"tool"' in schema:
            return self.act(req, user)
        if req.json_schema or "Summarise" in user:  # Training-Free GRPO's learner
            fmt = {"json_schema": {"schema": req.json_schema}} if req.json_schema else None
            return toy_answer({"messages": [m.model_dump() for m in req.messages], "seed": seed,
                               "response_format": fmt})  # fmt: skip
        return self.solve(user, seed)


def counting(answer: Oracle, kill_at: int | None = None):
    calls = {"n": 0}

    def model(req: Request, seed: int | None) -> str:
        calls["n"] += 1
        if kill_at is not None and calls["n"] == kill_at:
            raise Killed(f"call {kill_at}")
        return answer(req, seed)

    return model, calls


def fresh_calls(run: Path) -> int:
    return sum(not json.loads(line)["cached"] for line in (run / "calls.jsonl").read_text().splitlines())


def untimed(value: Any) -> Any:
    """Without what differs between two equal runs: timings, wall-clock stamps, replay bookkeeping."""
    if isinstance(value, dict):
        drop = (
            "cached",
            "usage",
            "latency_s",
            "seconds",
            "step_seconds",
            "items_per_s",
            "wall_s",
            "resumed_items",
        )
        return {
            k: untimed(v) for k, v in value.items() if k not in drop and not k.endswith(("_seconds", "_at"))
        }
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def comparable(run: Path, spec: TaskSpec) -> dict[str, Any]:
    rd = RunDir(run)
    out: dict[str, Any] = {"results": untimed(json.loads((run / "results.json").read_text())["results"])}
    out["evals"] = {
        p.name: {r["item_id"]: [(s["text"], v["correct"], v["reward"]) for s, v in zip(r["samples"], r["verdicts"], strict=True)]
                 for r in rd.read_jsonl(p.name)}
        for p in sorted(run.glob("eval-*.jsonl"))
    }  # fmt: skip
    for rows in ("metrics.jsonl", "episodes.jsonl"):  # per step / per episode, memento's per-item rows
        if (run / rows).exists():
            out[rows] = [untimed(m) for m in rd.read_jsonl(rows)]
    for saved in ("memento_q.json", "state.json"):
        if (run / saved).exists():
            out[saved] = untimed(json.loads((run / saved).read_text()))
    if spec.algorithm == "tfgrpo":
        lib = Library.load(run)
        out["library"] = [(x.id, x.text, x.status, x.version, x.helpful, x.harmful, tuple(x.source_rollouts))
                          for x in lib.lessons.values()] + [lib.version]  # fmt: skip
    if spec.algorithm == "memento":
        mem = open_memory(rd.file("memory"), embedder=spec.memento.embedder, namespace="memento")
        out["memory"] = {
            name: sorted(json.dumps(untimed(r.model_dump(mode="json")), sort_keys=True) for r in store.all())
            for name, store in mem.stores().items()
        }
    return out


@pytest.mark.parametrize("task", TASKS, ids=[t.stem for t in TASKS])
def test_killed_then_resumed_equals_an_uninterrupted_run(tmp_path, task):
    spec = small_spec(task, tmp_path / "games")
    game = spec.data.source.startswith("textworld")
    oracle = Oracle([] if game else load_items(spec.data, task.parent), code=spec.verifier.kind == "code")

    model, calls = counting(oracle)
    whole = run_task(spec, run_dir=tmp_path / "whole", client=FunctionClient(model))
    assert whole.status == "finished"
    total = calls["n"]
    assert total >= 4, f"only {total} model calls: nothing to kill part-way"

    run = tmp_path / "killed"
    model, _ = counting(oracle, kill_at=total // 2 + 1)
    with pytest.raises(Killed):
        run_task(small_spec(task, tmp_path / "games"), run_dir=run, client=FunctionClient(model))
    resumed = resume_task(run, client=FunctionClient(oracle))
    assert resumed.status == "finished"

    assert comparable(run, spec) == comparable(tmp_path / "whole", spec)
    assert fresh_calls(run) == fresh_calls(tmp_path / "whole"), "the resumed run paid for a call twice"
