"""A run stopped by an error: one that stops before any model call answered leaves no run directory behind;
one that stops after answers keeps its directory, with results.json saying why it stopped, and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memrl.errors import AuthenticationError, DataError, TransportError
from memrl.llm.base import Request
from memrl.runner import resume_task, run_task
from memrl.spec import TaskSpec, spec_from_mapping
from memrl.testing import FunctionClient
from memrl.testing.faults import sums_rows


def _spec(tmp_path: Path, **run: str) -> TaskSpec:
    """An evaluation of 6 sums, one sample each; retried errors are tried once (no backoff waits)."""
    (tmp_path / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(12)))
    raw = {"name": "sums", "model": {"name": "openai/x", "max_attempts": 1}, "algorithm": "evaluate",
           "data": {"source": "sums.jsonl", "test_size": 6}, "eval": {"k": 1},
           "run": {"dir": str(tmp_path / "runs"), **run}}  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def _answer(req: Request, seed: int | None) -> str:
    a, b = (int(t) for t in req.messages[-1].content.split("What is ")[1].split("?")[0].split(" + "))
    return f"The answer is {a + b}."


def _failing(error: Exception, after: int = 0) -> FunctionClient:
    """Answers `after` calls, then raises `error` on every call."""

    def answer(req: Request, seed: int | None) -> str:
        if client.calls > after:
            raise error
        return _answer(req, seed)

    client = FunctionClient(answer)
    return client


def _runs(tmp_path: Path) -> list[str]:
    root = tmp_path / "runs"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_bad_data_file_leaves_no_run_directory(tmp_path):
    spec = _spec(tmp_path)
    (tmp_path / "sums.jsonl").write_text("not json\n")
    with pytest.raises(DataError):
        run_task(spec, client=FunctionClient(_answer))
    assert _runs(tmp_path) == []
    with pytest.raises(DataError):
        run_task(spec, run_dir=tmp_path / "runs" / "named", client=FunctionClient(_answer))
    assert _runs(tmp_path) == []


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("401 invalid api key", status=401), TransportError("connection refused")],
    ids=["401", "refused"],
)
def test_an_error_on_the_first_model_call_leaves_no_run_directory(tmp_path, error):
    with pytest.raises(type(error)):
        run_task(_spec(tmp_path), client=_failing(error))
    assert _runs(tmp_path) == []


def test_an_error_after_answers_keeps_the_run_with_the_reason_and_it_resumes(tmp_path):
    spec = _spec(tmp_path, name="r")
    with pytest.raises(AuthenticationError):
        run_task(spec, client=_failing(AuthenticationError("401 key revoked", status=401), after=3))
    run = tmp_path / "runs" / "r"
    saved = json.loads((run / "results.json").read_text())
    assert saved["status"] == "error"
    assert "AuthenticationError" in saved["message"] and "401 key revoked" in saved["message"]
    assert saved["usage"]["total"]["calls"] == 3

    client = FunctionClient(_answer)
    done = resume_task(run, client=client)
    assert done.status == "finished" and done.results["eval-test"]["score"]["mean_at_k"] == 1.0
    assert client.calls == 3  # the three answers given before the error are not asked for again
    assert json.loads((run / "results.json").read_text())["status"] == "finished"


def test_an_error_on_resume_before_any_answer_keeps_the_run(tmp_path):
    spec = _spec(tmp_path, name="r")
    with pytest.raises(AuthenticationError):
        run_task(spec, client=_failing(AuthenticationError("401", status=401), after=2))
    run = tmp_path / "runs" / "r"
    with pytest.raises(TransportError):
        resume_task(run, client=_failing(TransportError("refused")))
    assert (run / "spec.yaml").exists() and (run / "calls.jsonl").exists()
    assert json.loads((run / "results.json").read_text())["status"] == "error"
