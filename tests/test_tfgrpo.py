"""Training-Free GRPO with a deterministic model double through the real cache, ledger and run directory."""

from __future__ import annotations

import json
import re

import pytest

from memrl.library import Library, Op, Proposal, reconcile
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import TFGRPOSpec, spec_from_mapping
from memrl.testing import FunctionClient

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
LESSONS = [
    "When adding two numbers, count up from the larger one",
    "When the answer is requested, reply with the bare number only",
    "When a sum looks too large, recheck the carry before answering",
]


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing retries or swallows it."""


def model(kill_at: dict[str, int] | None = None):
    """Rollouts: right for even seeds, wrong for odd; always right when a == b (a zero-advantage group)."""
    seen: dict[str, int] = {}

    def answer(req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        kind = "learner" if req.json_schema or "Summarise" in user else "rollout"
        seen[kind] = seen.get(kind, 0) + 1
        if kill_at and seen[kind] == kill_at.get(kind):
            raise Killed(kind)
        if kind == "rollout":
            a, b = map(int, re.findall(r"\d+", user)[:2])
            right = a == b or (seed or 0) % 2 == 0
            return str(a + b if right else a + b + 1)
        if "Summarise" in user:
            return "The attempt added the two numbers."
        if "lessons" in (req.json_schema or {}).get("properties", {}):
            a = int(re.findall(r"\d+", user)[0])
            return json.dumps({"lessons": [LESSONS[a % 3]]})
        new = re.findall(r"^- (When .*)$", user, re.M)
        ids = re.findall(r"^\[(L\d{4})\]", user, re.M)
        ops = [{"op": "ADD", "content": t} for t in new]
        if ids and len(ids) % 2 == 0:
            ops.append({"op": "UPDATE", "id": ids[0], "content": f"{LESSONS[len(ids) % 3]} twice"})
        if len(ids) >= 3:
            ops.append({"op": "DELETE", "id": ids[-1]})
        return json.dumps({"operations": ops})

    return answer


def spec_for(tmp_path, diversity=None, **tf):
    data = tmp_path / "sums.jsonl"
    rows = [
        {"id": f"q{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
        for a in range(1, 7)
        for b in (a, a + 2)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "tf", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 4, "seed": 1},
        "prompt": {"system": "You are a careful calculator."},
        "eval": {"k": 2, "max_tokens": 8},
        "tfgrpo": {"epochs": 2, "batch_size": 4, "group_size": 4, "steps_per_epoch": 2} | tf,
        "run": {"dir": str(tmp_path / "runs")},
        "diversity": {"embedder": "hash-64"} | (diversity or {}),
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def final_library(run_dir) -> list[tuple]:
    lib = Library.load(run_dir)
    return [
        (x.id, x.text, x.status, x.version, x.helpful, x.harmful, tuple(x.source_rollouts))
        for x in lib.lessons.values()
    ]


def fresh_calls(run_dir) -> int:
    return sum(not json.loads(line)["cached"] for line in (run_dir / "calls.jsonl").read_text().splitlines())


def test_learning_run_learns_versions_and_skips_zero_advantage_groups(tmp_path):
    client = FunctionClient(model())
    res = run_task(spec_for(tmp_path), run_dir=tmp_path / "r", client=client)
    assert res.status == "finished"
    run = RunDir(tmp_path / "r")
    metrics = list(run.read_jsonl("metrics.jsonl"))
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(m["learned_groups"] <= m["groups"] for m in metrics)
    for m in metrics:  # groups of a == b items are all right: never sent to the learner
        assert m["learned_groups"] == round(m["mixed_fraction"] * m["groups"])
    rollouts = [g for s in range(1, 5) for g in run.read_json(f"rollouts/step-{s:04d}.json")]
    zero = [g for g in rollouts if len({r["verdict"]["correct"] for r in g}) == 1]
    assert zero, "the data must contain zero-advantage groups for this test to mean anything"
    lib = Library.load(run.path)
    assert len(lib) >= 1 and lib.version == 4
    assert {"eval-epoch0", "eval-epoch1", "eval-epoch2", "learning"} <= set(res.results)
    # ids are stable: a lesson keeps its id and creation step in every later version
    seen: dict[str, int] = {}
    for v in range(1, 5):
        for lid, lesson in lib.lessons_at(v).items():
            assert seen.setdefault(lid, lesson.created_step) == lesson.created_step
    assert (run.path / "library-export.json").exists() and (run.path / "library-export.md").exists()
    usage = run.read_json("usage.json")
    assert usage["rollout"]["calls"] > 0 and usage["learner"]["calls"] > 0 and usage["eval"]["calls"] > 0


def test_zero_advantage_groups_never_reach_the_learner(tmp_path):
    prompts: list[str] = []
    inner = model()

    def spy(req: Request, seed):
        if req.json_schema or "Summarise" in req.messages[-1].content:
            prompts.append(req.messages[-1].content)
        return inner(req, seed)

    run_task(spec_for(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(spy))
    for a in range(1, 7):
        assert not any(f"What is {a} + {a}?" in p for p in prompts), (
            f"the all-right group {a}+{a} reached the learner"
        )
    assert prompts


@pytest.mark.parametrize("phase", ["rollout", "learner", "checkpoint", "eval"])
def test_kill_in_each_phase_then_resume_gives_the_same_library(tmp_path, phase, monkeypatch):
    ref = tmp_path / "ref"
    run_task(spec_for(tmp_path), run_dir=ref, client=FunctionClient(model()))

    killed = tmp_path / "killed"
    kill_at = {"rollout": {"rollout": 20}, "learner": {"learner": 15}, "eval": {"rollout": 75}}.get(phase)
    if phase == "checkpoint":
        real = RunDir.write_json
        state = {"n": 0}

        def dying_write(self, name, data):
            if name == "state.json":
                state["n"] += 1
                if state["n"] == 2:
                    raise Killed("between the library write and the checkpoint")
            return real(self, name, data)

        monkeypatch.setattr(RunDir, "write_json", dying_write)
    with pytest.raises(Killed):
        run_task(spec_for(tmp_path), run_dir=killed, client=FunctionClient(model(kill_at)))
    monkeypatch.undo()
    res = run_task(spec_for(tmp_path), run_dir=killed, resume=True, client=FunctionClient(model()))
    assert res.status == "finished"
    assert final_library(killed) == final_library(ref)
    assert fresh_calls(killed) == fresh_calls(ref), "the resumed run paid for a call twice"
    assert [
        json.dumps({k: v for k, v in m.items() if k not in ("usage", "step_seconds")})
        for m in RunDir(killed).read_jsonl("metrics.jsonl")
    ] == [
        json.dumps({k: v for k, v in m.items() if k not in ("usage", "step_seconds")})
        for m in RunDir(ref).read_jsonl("metrics.jsonl")
    ]


def _lib() -> Library:
    lib = Library()
    lib.add("When adding two numbers, count up from the larger one", step=1)
    lib.add("When the answer is requested, reply with the bare number only", step=1)
    lib.commit()
    return lib


def _curate(props, lib, learner=None, **tf):
    import asyncio

    from memrl.inject import LessonVectors
    from memrl.library import curate
    from memrl.memory.embed import make_embedder
    from memrl.spec import DiversitySpec

    vectors = LessonVectors(make_embedder("hash-64"))
    return asyncio.run(curate(props, lib, tfgrpo=TFGRPOSpec(**tf), diversity=DiversitySpec(embedder="hash-64"),
                              vectors=vectors, learner=learner, step=2, salt="t"))  # fmt: skip


def test_reconcile_resolves_conflicts():
    from memrl.testing import ScriptedLLM

    lib = _lib()
    cfg = TFGRPOSpec()
    props = [
        Proposal(item_id="a", order=0, sources=["s/a#0"], ops=[
            Op(op="UPDATE", id="L0001", content="When adding two numbers, start from the larger one"),
            Op(op="ADD", content="When a sum looks too large, recheck the carry before answering"),
            Op(op="UPDATE", id="L0002", content="When answering, give only the number"),
        ]),
        Proposal(item_id="b", order=1, sources=["s/b#1"], ops=[
            Op(op="DELETE", id="L0002"),
            Op(op="UPDATE", id="L0001", content="When adding, use fingers"),
            Op(op="ADD", content="When a sum looks too large, recheck the carry before you answer"),
            Op(op="ADD", content="When adding two numbers, count up from the larger one!"),
            Op(op="UPDATE", id="L0099", content="When unknown, nothing"),
            Op(op="ADD", content=""),
            Op(op="NONE"),
        ]),
    ]  # fmt: skip
    edits, rejected = reconcile(props, lib, cfg)
    reasons = sorted(r.reason for r in rejected)
    assert any("DELETE of the same lesson wins" in r for r in reasons)
    assert any("superseded" in r for r in reasons)
    assert any("unknown or retired lesson id 'L0099'" in r for r in reasons)
    assert any("empty content" in r for r in reasons)
    ops = sorted((e.op, e.id or "") for e in edits)  # equal texts fold here; near-equal ones are judged later
    assert ops == [("ADD", ""), ("ADD", ""), ("DELETE", "L0002"), ("SUPPORT", "L0001"), ("UPDATE", "L0001")]
    # the whole path: the learner's one reconcile call judges the two carry lessons the same
    learner = ScriptedLLM(['{"verdicts": ["same"]}'])
    res = _curate(props, lib, learner)
    learner.assert_consumed()
    assert res.judged_pairs == 1 and res.judged_same == 1
    assert res.ops == {"ADD": 1, "UPDATE": 1, "DELETE": 1, "SUPPORT": 1}
    assert lib.get("L0001").text == "When adding two numbers, start from the larger one"
    assert lib.get("L0002").status == "retired" and lib.get("L0003").source_rollouts == ["s/a#0", "s/b#1"]


def test_word_cap_and_library_cap():
    lib = _lib()
    props = [Proposal(item_id="a", order=0, sources=[], ops=[
        Op(op="ADD", content="When dividing by a fraction, multiply by its reciprocal instead of dividing"),
        Op(op="ADD", content="When units differ, convert them before any arithmetic"),
    ])]  # fmt: skip
    res = _curate(props, lib, word_cap=6, max_lessons=3)
    assert [x.text for x in lib.active()][-1] == "When dividing by a fraction, multiply"
    assert [r.reason for r in res.rejected] == ["library is at its cap of 3 lessons"]
    assert len(lib) == 3


def test_library_cli_show_diff_export_rollback(tmp_path):
    from typer.testing import CliRunner

    from memrl.cli import app

    run_task(spec_for(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(model()))
    cli = CliRunner()
    r = cli.invoke(app, ["library", "show", str(tmp_path / "r")])
    assert r.exit_code == 0 and "L0001" in r.stdout
    r = cli.invoke(app, ["library", "diff", str(tmp_path / "r"), "0", "4"])
    assert r.exit_code == 0 and "+ L0001" in r.stdout
    r = cli.invoke(app, ["library", "export", str(tmp_path / "r"), "--out", str(tmp_path / "x.json")])
    assert r.exit_code == 0 and json.loads((tmp_path / "x.json").read_text())["schema_version"] == 1
    r = cli.invoke(app, ["library", "rollback", str(tmp_path / "r"), "1"])
    assert r.exit_code == 0, r.output
    lib = Library.load(tmp_path / "r")
    assert lib.version == 5 and lib.diff(1, 5).is_empty()
    r = cli.invoke(app, ["library", "diff", str(tmp_path / "r"), "1", "99"])
    assert r.exit_code == 2


def test_library_stats_across_versions(tmp_path):
    from typer.testing import CliRunner

    from memrl.cli import app
    from memrl.diversity.stats import version_stats

    run_task(spec_for(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(model()))
    rows = version_stats(Library.load(tmp_path / "r"), "hash-64")
    assert [r.version for r in rows] == [0, 1, 2, 3, 4]
    assert rows[0].lessons == 0 and rows[-1].lessons == len(Library.load(tmp_path / "r"))
    for r in rows[1:]:
        assert 1 <= r.vendi <= r.lessons + 1e-9 and 0 < r.vendi_per_item <= 1 + 1e-9
    r = CliRunner().invoke(app, ["library", "stats", str(tmp_path / "r")])
    assert r.exit_code == 0 and "Vendi/n" in r.stdout
