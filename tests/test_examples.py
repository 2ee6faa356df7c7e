"""The examples run, offline, on the embedded local model (in this process, sharing one llama.cpp server).

What the tiny model answers is not asserted, only that every example runs end to end and reports sane
numbers; the verifier's logic and the task-file route to it are checked without a model.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import needs_local

from memrl import Item
from memrl.spec import VerifierSpec
from memrl.tasks.verifiers import build_verifier

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def test_the_unit_verifier_and_its_task_file_route_without_a_model():
    mod = example("custom_verifier")
    item = mod.ITEMS[0]
    rewards = [asyncio.run(mod.UnitVerifier().verify(item, a)).reward for a in ("8.05 km", "about 8.0", "5")]
    assert rewards == [1.0, 0.5, 0.0]
    verifier = build_verifier(VerifierSpec(kind="python", function="custom_verifier.py:judge"), EXAMPLES)
    verdict = asyncio.run(
        verifier.verify(Item(id="x", question="?", answer="4.54", meta={"unit": "kg"}), "4.5 kg")
    )
    assert verdict.correct and verdict.reason == "right, with unit"


def test_the_shipped_library_is_a_valid_export():
    data = json.loads((EXAMPLES / "data" / "arith-library.json").read_text())
    assert data["schema_version"] == 1 and len(data["lessons"]) == 4
    assert all(x["text"].startswith("When ") for x in data["lessons"])


@pytest.mark.local_model
@pytest.mark.slow
@needs_local
def test_agent_app_then_the_same_app_with_memory(local_server, tmp_path, capsys):
    before = example("agent_app").main(["--tasks", "2"])
    assert before["tasks"] == 2 and 0 <= before["right"] <= 2
    memory = tmp_path / "memory.json"
    shutil.copy(
        EXAMPLES / "data" / "arith-library.json", memory
    )  # start from a library, so requests carry one
    after = example("agent_with_memory").main(["--memory", str(memory), "--rounds", "2", "--tasks", "1"])
    assert after["recorded"] == 2 and after["lessons"] >= 4
    saved = json.loads(memory.read_text())
    assert saved["version"] == after["version"] and len(saved["lessons"]) == after["lessons"]
    out = capsys.readouterr().out
    assert "round 2: accuracy" in out and "saved to" in out


@pytest.mark.local_model
@pytest.mark.slow
@needs_local
def test_custom_verifier_example(local_server, tmp_path):
    res = example("custom_verifier").main(["--attempts", "1", "--out", str(tmp_path)])
    assert res["outcomes"] == 3 and set(res["rewards"]) <= {0.0, 0.5, 1.0}
    assert res["task_score"]["n_items"] == 2 and (tmp_path / "runs").is_dir()


@pytest.mark.local_model
@pytest.mark.slow
@needs_local
def test_deploy_library_example(local_server, capsys):
    res = example("deploy_library").main(["--tasks", "2"])
    assert res["lessons"] == 4 and all(0 <= n <= 2 for n in res["right"].values())
    assert "injected 4 lessons" in capsys.readouterr().out


@pytest.mark.local_model
@pytest.mark.slow
@needs_local
def test_responses_streaming_and_tool_call_apps(local_server, capsys):
    assert example("responses_app").main(["--tasks", "1"])["recorded"] == 1
    assert "in the instructions of every request" in capsys.readouterr().out
    assert example("streaming_app").main(["--tasks", "1"])["recorded"] == 1
    assert "4 lessons in every request" in capsys.readouterr().out
    assert example("tool_calls_app").main(["--tasks", "1"])["recorded"] == 1
    assert "tool results [" in capsys.readouterr().out
