"""`memrl run` end to end on the embedded model, and a SIGKILL mid-run followed by --resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import needs_local

pytestmark = needs_local

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "-c",
    "algorithm=evaluate",
    "-c",
    "data.size=24",
    "-c",
    "data.test_size=12",
    "-c",
    "eval.k=2",
    "-c",
    "eval.max_tokens=24",
]


def memrl(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "memrl.cli", *args], cwd=cwd, capture_output=True, text=True, **kw
    )


def items(run: Path) -> dict[str, dict]:
    out = {}
    for line in (run / "eval-test.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["item_id"]] = r
    return out


def fresh_calls(run: Path) -> int:
    return sum(not json.loads(line)["cached"] for line in (run / "calls.jsonl").read_text().splitlines())


def test_quickstart_cli_prints_a_table(tmp_path):
    r = memrl(
        "run",
        str(ROOT / "tasks/quickstart.yaml"),
        *SMALL,
        "-c",
        f"run.dir={tmp_path}",
        "-c",
        "run.name=q",
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Mean@k" in r.stdout and "eval-test" in r.stdout
    res = json.loads((tmp_path / "q/results.json").read_text())
    score = res["results"]["eval-test"]["score"]
    assert score["n_items"] == 12 and score["k"] == 2
    assert 0 <= score["mean_ci"][0] <= score["mean_at_k"] <= score["mean_ci"][1] <= 1


def test_sigkill_then_resume_keeps_finished_items_and_repeats_no_call(tmp_path):
    args = ["run", str(ROOT / "tasks/quickstart.yaml"), *SMALL, "-c", f"run.dir={tmp_path}", "-c", "run.name=k",
            "-c", "model.max_concurrency=1"]  # fmt: skip
    run = tmp_path / "k"
    proc = subprocess.Popen(
        [sys.executable, "-m", "memrl.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600  # a loaded 2-core machine took over 300 s for 4 items
    while time.time() < deadline:
        f = run / "eval-test.jsonl"
        if f.exists() and len(f.read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = items(run)
    assert 4 <= len(before) < 12, f"killed after {len(before)} items"
    r = memrl(*args, "--resume", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    after = items(run)
    assert len(after) == 12
    for k, v in before.items():
        assert after[k] == v, "a finished item changed on resume"
    # Every sample was asked of the model once: calls recorded by both processes, minus cache replays.
    assert fresh_calls(run) == 12 * 2

    # An uninterrupted run over the same cache gives the same per-item results and spends nothing.
    other = tmp_path / "u"
    other.mkdir()
    shutil.copy(run / "cache.sqlite", other / "cache.sqlite")
    r = memrl(
        *args[:-4],
        "-c",
        "run.name=u",
        "-c",
        "model.max_concurrency=1",
        "--run-dir",
        str(other),
        "--resume",
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]

    def texts_and_verdicts(run_items: dict[str, dict]) -> dict[str, list]:
        return {
            k: [(s["text"], d["correct"]) for s, d in zip(v["samples"], v["verdicts"], strict=True)]
            for k, v in run_items.items()
        }

    assert texts_and_verdicts(items(other)) == texts_and_verdicts(after)
    assert fresh_calls(other) == 0
