"""No secret in any artifact: a run with API keys in the environment (one named by the task's
`api_key_env`, one in a `${env:...}` interpolation) against a server that even echoes the key back in its
error messages, then its report; the run directory, the logs and the report must not contain either key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from memrl.cli import app
from memrl.report import build_report
from memrl.testing import Action, FakeOpenAIServer
from memrl.testing.faults import sums_rows, toy_answer

pytestmark = pytest.mark.slow

KEY = "sk-memrl-test-KEY-4f9a1c77e2"  # named by model.api_key_env
OTHER = "sk-memrl-test-OTHER-b83d0e15"  # OPENAI_API_KEY, pulled into the spec by ${env:...}


def echo(secret: str, status: int) -> Action:
    """A server (or proxy) that repeats the credentials it got in its error message."""
    msg = f"bad request from key {secret} (Authorization: Bearer {secret})"
    return Action(status=status, body=json.dumps({"error": {"message": msg, "type": "x", "code": status}}))


def task(tmp: Path, api_base: str) -> Path:
    (tmp / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(12)))
    raw = {
        "name": "secrets", "algorithm": "tfgrpo",
        "model": {"name": "openai/gpt-4o-mini", "api_base": api_base, "api_key_env": "MEMRL_SECRET_TEST_KEY",
                  "max_attempts": 4, "max_retry_wait_s": 0.1,
                  "extra": {"api_key": "${env:OPENAI_API_KEY}", "user": "memrl-test"}},
        "data": {"source": "sums.jsonl", "test_size": 4},
        "eval": {"k": 1, "max_tokens": 8},
        "tfgrpo": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "group_size": 2},
    }  # fmt: skip
    (tmp / "task.yaml").write_text(yaml.safe_dump(raw))
    return tmp / "task.yaml"


def leaks(root: Path, *texts: str) -> list[str]:
    found = []
    for p in [root] if root.is_file() else sorted(root.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{p}: {s[:12]}…" for s in (KEY, OTHER) if s.encode() in data]
    for i, t in enumerate(texts):
        found += [f"text {i}: {s[:12]}…" for s in (KEY, OTHER) if s in t]
    return found


def test_no_key_in_run_directory_logs_or_report(tmp_path):
    env = {**os.environ, "MEMRL_SECRET_TEST_KEY": KEY, "OPENAI_API_KEY": OTHER}
    script = [echo(KEY, 500), echo(OTHER, 503)]  # retried: each is logged as a warning
    with FakeOpenAIServer(script, responder=toy_answer) as srv:
        t = task(tmp_path, srv.api_base)
        r = subprocess.run(
            [sys.executable, "-m", "memrl.cli", "run", str(t), "-v", "--run-dir", str(tmp_path / "run")],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        sent = [
            {k.lower(): v for k, v in rec["headers"].items()}.get("authorization") for rec in srv.requests
        ]
    assert r.returncode == 0, r.stderr[-3000:]
    assert sent and set(sent) == {f"Bearer {KEY}"}, "the key was really used"
    assert "retrying" in r.stderr, "the echoed errors were logged"
    (tmp_path / "run.log").write_text(r.stdout + r.stderr)
    report = build_report(tmp_path / "run")
    spec = yaml.safe_load((tmp_path / "run" / "spec.yaml").read_text())
    assert spec["model"]["api_key_env"] == "MEMRL_SECRET_TEST_KEY"
    assert spec["model"]["extra"]["api_key"] == "<redacted>"
    assert report.html.exists()
    assert leaks(tmp_path / "run") == [] and leaks(tmp_path / "run.log") == []


def test_no_key_in_the_error_of_a_rejected_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMRL_SECRET_TEST_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OTHER)
    with FakeOpenAIServer(default=echo(KEY, 401)) as srv:
        t = task(tmp_path, srv.api_base)
        r = CliRunner().invoke(app, ["run", str(t), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 2 and "authentication failed" in r.output
    assert leaks(tmp_path / "run", r.output) == []
