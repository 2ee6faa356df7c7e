"""The run directory's spec.yaml loads back to the spec it was written from, so a run resumes with the
settings it started with: secrets are kept out of it by value (the keys themselves), never by key name
(`eval.max_tokens` is a setting, not a secret)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from memrl.cli import app
from memrl.library import Library
from memrl.llm.base import Request
from memrl.policy import MemoryPolicy
from memrl.runner import resume_task, run_task
from memrl.runs import RunDir
from memrl.spec import TaskSpec, load_spec, spec_from_mapping
from memrl.testing import FakeOpenAIServer, FunctionClient
from memrl.testing.faults import sums_rows, toy_answer

ROOT = Path(__file__).resolve().parents[1]
TASKS = sorted((ROOT / "tasks").glob("*.yaml"))


def _numbered(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """A distinct value for every integer setting whose name holds 'token' or 'key', section by section."""
    out: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        ann = f.annotation
        subs = [a for a in (getattr(ann, "__args__", ()) or (ann,)) if isinstance(a, type)]
        section = next((a for a in subs if issubclass(a, BaseModel)), None)
        if section is not None and prefix == "":
            inner = _numbered(section, f"{name}.")
            if inner:
                out[name] = inner
        elif int in subs and ("token" in name or "key" in name):
            out[name] = 4096 + len(out) + 7 * len(prefix)
    return out


@pytest.mark.parametrize("task", TASKS, ids=[t.stem for t in TASKS])
def test_every_task_file_loads_back_from_its_run_directory(tmp_path, task):
    spec = load_spec(task)
    run = RunDir(tmp_path)
    run.write_spec(spec)
    assert run.load_spec() == spec
    assert "<redacted>" not in (tmp_path / "spec.yaml").read_text()


def test_every_token_setting_survives_spec_yaml(tmp_path):
    settings = _numbered(TaskSpec)
    assert {"eval", "budget", "tfgrpo", "memento"} <= set(settings), settings
    raw = {"name": "t", "algorithm": "tfgrpo", "data": {"source": "x.jsonl"}, **settings}
    spec = spec_from_mapping(raw, base_dir=tmp_path)
    run = RunDir(tmp_path / "run")
    run.write_spec(spec)
    assert run.load_spec() == spec
    assert run.load_spec().tfgrpo.learner_max_tokens == settings["tfgrpo"]["learner_max_tokens"]


def toy(request: Request, seed: int | None) -> str:
    """faults.toy_answer (a deterministic policy and learner for sums) for a FunctionClient."""
    fmt = {"json_schema": {"schema": request.json_schema}} if request.json_schema else None
    body = {"messages": [m.model_dump() for m in request.messages], "seed": seed, "response_format": fmt}
    return toy_answer(body)


def comparable(run: Path) -> dict[str, Any]:
    results = json.loads((run / "results.json").read_text())["results"]
    lib = Library.load(run)
    evals = {}
    for p in sorted(run.glob("eval-*.jsonl")):
        rows = {r["item_id"]: r for r in RunDir(run).read_jsonl(p.name)}
        evals[p.name] = {k: [(s["text"], d["correct"]) for s, d in zip(r["samples"], r["verdicts"], strict=True)]
                         for k, r in rows.items()}  # fmt: skip
    return {
        "scores": {k: v["score"] for k, v in results.items() if isinstance(v, dict) and "score" in v},
        "library": [(x.id, x.text, x.status) for x in lib.lessons.values()],
        "evals": evals,
    }


def test_quickstart_stopped_by_its_budget_then_resumed_equals_an_uninterrupted_run(tmp_path):
    small = ["eval.k=2", "data.size=24", "data.test_size=6", "tfgrpo.steps_per_epoch=2"]
    whole = run_task(load_spec(ROOT / "tasks/quickstart.yaml", small), run_dir=tmp_path / "whole",
                     client=FunctionClient(toy))  # fmt: skip
    assert whole.status == "finished"
    half = int(whole.usage["total"]["total_tokens"] // 2)

    spec = load_spec(ROOT / "tasks/quickstart.yaml", [*small, f"budget.max_tokens={half}"])
    run = tmp_path / "stopped"
    stopped = run_task(spec, run_dir=run, client=FunctionClient(toy))
    assert stopped.status == "budget"
    saved = RunDir(run).load_spec()
    assert saved == spec and saved.eval.max_tokens == 48
    res = resume_task(run, ["budget.max_tokens=null"], client=FunctionClient(toy))
    assert res.status == "finished"
    assert comparable(run) == comparable(tmp_path / "whole")

    policy = MemoryPolicy.load(run)  # deployment reads the run's settings back from the same spec.yaml
    assert policy.tfgrpo == spec.tfgrpo


def test_memory_policy_takes_user_placement_from_a_run(tmp_path):
    spec = load_spec(ROOT / "tasks/quickstart.yaml",
                     ["prompt.memory_placement=user", "data.size=12", "data.test_size=4", "eval.k=1",
                      "tfgrpo.steps_per_epoch=1", "tfgrpo.memory_tokens=700"])  # fmt: skip
    run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(toy))
    policy = MemoryPolicy.load(tmp_path / "r")
    assert policy.placement == "user"
    assert policy.tfgrpo.memory_tokens == 700


def test_memory_policy_reads_placement_from_a_spec_an_older_memrl_redacted(tmp_path, caplog):
    run = tmp_path / "run"
    Library().save(run)
    raw = {"name": "t", "algorithm": "tfgrpo", "data": {"source": "x.jsonl"},
           "prompt": {"memory_placement": "user"}, "eval": {"max_tokens": "<redacted>"},
           "tfgrpo": {"word_cap": 20, "memory_tokens": "<redacted>"}}  # fmt: skip
    (run / "spec.yaml").write_text(yaml.safe_dump(raw))
    policy = MemoryPolicy.load(run)
    assert policy.placement == "user" and policy.tfgrpo.word_cap == 20
    assert policy.tfgrpo.memory_tokens is None
    with pytest.raises(Exception, match=r"-c eval\.max_tokens="):
        RunDir(run).load_spec()


KEY_ENV = "MEMRL_RESUME_TEST_KEY"


@pytest.mark.parametrize("key", ["sk-test-5b1e9c0d7a2f44e1", "plain-secret-value-8d31"], ids=["sk", "plain"])
def test_the_key_named_by_api_key_env_is_in_no_file_of_the_run(tmp_path, monkeypatch, key):
    """The key reaches the spec through `${env:...}` (under a name that does not say 'key') and is sent to
    the server, yet no file of the run holds it; `memrl resume` then finishes the run."""
    monkeypatch.setenv(KEY_ENV, key)
    (tmp_path / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(12)))
    with FakeOpenAIServer(responder=toy_answer) as srv:
        raw = {
            "name": "keys", "algorithm": "tfgrpo",
            "model": {"name": "openai/gpt-4o-mini", "api_base": srv.api_base, "api_key_env": KEY_ENV,
                      "extra": {"user": f"${{env:{KEY_ENV}}}"}},
            "data": {"source": "sums.jsonl", "test_size": 4},
            "eval": {"k": 1, "max_tokens": 8},
            "budget": {"max_tokens": 150},
            "tfgrpo": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "group_size": 2,
                       "learner_max_tokens": 300},
        }  # fmt: skip
        (tmp_path / "task.yaml").write_text(yaml.safe_dump(raw))
        run = tmp_path / "run"
        first = CliRunner().invoke(app, ["run", str(tmp_path / "task.yaml"), "--run-dir", str(run)])
        assert first.exit_code == 3, first.output  # stopped by the token budget
        again = CliRunner().invoke(app, ["resume", str(run), "-c", "budget.max_tokens=null"])
        assert again.exit_code == 0, again.output
        sent = {
            str({k.lower(): v for k, v in r["headers"].items()}.get("authorization")) for r in srv.requests
        }
    assert sent == {f"Bearer {key}"}, "the key was really used"
    saved = RunDir(run).load_spec()
    assert saved.model.extra["user"] == "<redacted>" and saved.model.api_key_env == KEY_ENV
    assert (saved.eval.max_tokens, saved.tfgrpo.learner_max_tokens) == (8, 300)
    leaked = [p.name for p in run.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert leaked == []
