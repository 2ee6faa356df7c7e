"""Crash safety of a real `memrl run`: SIGKILL at random points of a Training-Free GRPO run (rollouts,
learner calls, evaluation, library writes), resume each time, and finish with the same library and
metrics as an uninterrupted run over the same cache. After every kill, every file in the run directory
must parse: no file is ever left half-written.

The model is a deterministic toy served by a local OpenAI-compatible server (memrl.testing.faults), so
the whole run takes seconds and two runs of the same requests get the same answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from memrl.library import Library
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import load_spec
from memrl.testing import FakeOpenAIServer
from memrl.testing.faults import sums_rows, toy_answer

pytestmark = pytest.mark.slow

KEY_ENV = "MEMRL_CRASH_TEST_KEY"


def phase_of(body: dict[str, Any]) -> str:
    user = str(body["messages"][-1]["content"])
    if body.get("response_format") or "Summarise" in user:
        return "learner"
    return "eval" if body.get("temperature") == 0.3 else "rollout"


def write_task(tmp: Path, api_base: str) -> Path:
    (tmp / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(40)))
    task = {
        "name": "crash", "algorithm": "tfgrpo",
        "model": {"name": "openai/gpt-4o-mini", "api_base": api_base, "api_key_env": KEY_ENV,
                  "max_concurrency": 4, "timeout_s": 5, "max_attempts": 3},
        "data": {"source": "sums.jsonl", "test_size": 10, "seed": 2},
        "prompt": {"system": "You are a careful calculator."},
        "eval": {"k": 2, "max_tokens": 8, "temperature": 0.3},
        "tfgrpo": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "group_size": 4, "temperature": 0.7},
    }  # fmt: skip
    path = tmp / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    return path


def check_files(run: Path, *, after_kill: bool) -> int:
    """Parse every json, jsonl, yaml and sqlite file; a jsonl may end in one torn line only after a kill."""
    n = 0
    for p in sorted(run.rglob("*")):
        if not p.is_file():
            continue
        n += 1
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".yaml":
            yaml.safe_load(p.read_text())
        elif p.suffix == ".jsonl":
            data = p.read_text()
            lines = data.split("\n")
            torn = lines.pop()  # "" when the file ends with a newline
            assert not torn or after_kill, f"{p.name} ends in a torn line after a clean exit"
            for line in lines:
                json.loads(line)
        elif p.suffix == ".sqlite":
            with contextlib.closing(sqlite3.connect(p)) as db:  # an open reader would keep the WAL alive
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return n


def cli(task: Path, run: Path, *, resume: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "memrl.cli", "run", str(task), "--run-dir", str(run)]
    return subprocess.Popen(
        args + (["--resume"] if resume else []),
        cwd=task.parent,
        env={**os.environ, KEY_ENV: "sk-crash-test"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class Killer:
    """Kills the running `memrl run` at planned points: the n-th request the server sees (plus a random
    few milliseconds, so kills also land between requests), the n-th request of a phase (a run has few
    learner calls, so a random request number often misses them all), or the moment a new library version
    is on disk before its checkpoint (between the library write and state.json)."""

    def __init__(self, request_points: list[int], rng: random.Random, phase_points: dict[str, int]) -> None:
        self.points = sorted(request_points)
        self.phase_points = dict(phase_points)
        self.rng = rng
        self.proc: subprocess.Popen | None = None
        self.seen = 0
        self.seen_in: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()
        self.lock = threading.Lock()

    def on_request(self, record: dict[str, Any]) -> None:
        phase = phase_of(record["body"])
        with self.lock:
            self.seen += 1
            self.seen_in[phase] += 1
            if self.proc is None:
                return
            if phase in self.phase_points and self.seen_in[phase] >= self.phase_points[phase]:
                del self.phase_points[phase]  # the first armed request of that phase from its n-th on
            elif self.points and self.seen >= self.points[0]:
                self.points.pop(0)
            else:
                return
            proc = self.proc
        threading.Timer(self.rng.uniform(0, 0.03), self.kill, args=(proc, phase)).start()

    def kill(self, proc: subprocess.Popen, phase: str) -> None:
        with self.lock:
            if proc.poll() is None and (proc is self.proc or phase == "library-write"):
                os.kill(proc.pid, signal.SIGKILL)
                self.kills[phase] += 1
                self.proc = None

    def watch_library_write(self, proc: subprocess.Popen, run: Path, deadline: float) -> None:
        """Kill as soon as this process saves a library version newer than state.json's checkpoint."""
        started = time.time_ns()
        while time.time() < deadline and proc.poll() is None:
            try:
                fresh = (run / "library.json").stat().st_mtime_ns > started
                saved = json.loads((run / "library.json").read_text())["version"]
                state = json.loads((run / "state.json").read_text())["library_version"]
            except (OSError, ValueError, KeyError):
                fresh = False
            if fresh and saved > state:
                self.kill(proc, "library-write")
                return
            time.sleep(0.0005)


def rows(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines()) if path.exists() else []


def strip_replay(value: Any) -> Any:
    """Without what differs between a paid answer and its replay from the cache."""
    if isinstance(value, dict):
        return {k: strip_replay(v) for k, v in value.items() if k not in ("cached", "usage")}
    if isinstance(value, list):
        return [strip_replay(v) for v in value]
    return value


def eval_rows(path: Path) -> dict[str, list]:
    """Per item: the answers and verdicts (not whether they came from the cache)."""
    out = {}
    for r in RunDir(path.parent).read_jsonl(path.name):
        out[r["item_id"]] = strip_replay(r)
    return out


def comparable_metrics(run: Path) -> list[str]:
    return [
        json.dumps({k: v for k, v in m.items() if k not in ("usage", "step_seconds")}, sort_keys=True)
        for m in RunDir(run).read_jsonl("metrics.jsonl")
    ]


def library_state(run: Path) -> list[tuple]:
    lib = Library.load(run)
    return [
        (x.id, x.text, x.status, x.version, x.helpful, x.harmful, tuple(x.source_rollouts))
        for x in lib.lessons.values()
    ] + [lib.version]


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    rng = random.Random(9)
    # About 250 requests in all: kill at random request numbers spread over the run.
    killer = Killer(sorted(rng.sample(range(10, 240), 6)), rng, {"learner": 3})
    srv = FakeOpenAIServer(responder=toy_answer, on_request=killer.on_request).start()
    try:
        task = write_task(tmp_path, srv.api_base)
        run = tmp_path / "killed"
        files_checked = 0
        lib_kill_done = False
        for attempt in range(20):
            t0 = time.time()
            proc = cli(task, run, resume=attempt > 0)
            if not lib_kill_done and attempt >= 2:  # once the run is under way, a library-write kill
                lib_kill_done = True  # (request-point kills wait for the next attempt)
                killer.watch_library_write(proc, run, time.time() + 120)
            else:
                with killer.lock:
                    killer.proc = proc
            try:
                _, err = proc.communicate(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
            print(f"attempt {attempt}: rc {proc.returncode} after {time.time() - t0:.1f}s")
            if proc.returncode == 0:
                break
            assert proc.returncode == -signal.SIGKILL, err[-3000:]
            files_checked += check_files(run, after_kill=True)
        else:
            pytest.fail("the run never finished")
        check_files(run, after_kill=False)
        assert not list(run.rglob("*.tmp")), "temporary files of interrupted writes were left behind"
        killed_requests = [dict(r) for r in srv.requests]
    finally:
        srv.stop()
    kills = sum(killer.kills.values())
    print(f"\nkills survived: {kills} {dict(killer.kills)}; files parsed after kills: {files_checked}")
    assert kills >= 5 and killer.kills["library-write"] == 1
    assert {"rollout", "learner"} <= set(killer.kills)

    # An uninterrupted run over a copy of the same cache: every answer replays, nothing is asked again.
    ref = tmp_path / "ref"
    ref.mkdir()
    for f in run.glob("cache.sqlite*"):
        shutil.copy(f, ref / f.name)
    monkeypatch.setenv(KEY_ENV, "sk-crash-test")
    with FakeOpenAIServer(responder=toy_answer) as srv2:
        spec = load_spec(task, [f"model.api_base={srv2.api_base}"])
        res = run_task(spec, run_dir=ref)
        assert res.status == "finished"
        assert len(srv2.requests) == 0, "the killed run's cache must hold every answer"

    assert library_state(run) == library_state(ref)
    assert comparable_metrics(run) == comparable_metrics(ref)
    assert rows(run / "events.jsonl") == rows(ref / "events.jsonl")
    for e in range(3):
        assert eval_rows(run / f"eval-epoch{e}.jsonl") == eval_rows(ref / f"eval-epoch{e}.jsonl")
    for step in sorted((ref / "rollouts").glob("step-*.json")):
        got = json.loads((run / "rollouts" / step.name).read_text())
        assert strip_replay(got) == strip_replay(json.loads(step.read_text())), step.name
    scores = {k: v["score"] for k, v in json.loads((ref / "results.json").read_text())["results"].items()
              if "score" in v}  # fmt: skip
    got = json.loads((run / "results.json").read_text())["results"]
    assert {k: got[k]["score"] for k in scores} == scores

    # Charges: an answer delivered to a process that was killed before it could cache it is paid for
    # and asked again after the resume; nothing else is. The ledger counts every paid call once.
    bodies = Counter(json.dumps(r["body"], sort_keys=True) for r in killed_requests if r["outcome"] == "ok")
    duplicates = sum(n - 1 for n in bodies.values())
    fresh = [c for c in RunDir(run).read_jsonl("calls.jsonl") if not c["cached"]]
    served = sum(bodies.values())
    assert duplicates <= kills * 4, f"{duplicates} duplicate charges for {kills} kills"
    assert len(bodies) <= len(fresh) <= served, "every answer recorded, none recorded that was not paid"
    assert served - len(fresh) <= kills * 4, "only answers in flight at a kill go unrecorded"
    assert len(bodies) == len({json.dumps(r["body"], sort_keys=True) for r in killed_requests})
    assert json.loads((run / "usage.json").read_text())["total"]["calls"] == len(fresh)
    print(f"requests {len(killed_requests)}, answers re-asked after kills {duplicates}")
