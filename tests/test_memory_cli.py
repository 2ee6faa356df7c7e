"""`memrl memory export | import | show --cases`: stores moved as versioned JSON, cases shown with their learned Q."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memrl.cases.q import QModel
from memrl.cases.view import case_view
from memrl.cli import app
from memrl.errors import ConfigError
from memrl.memory.records import CaseRecord, LessonRecord
from memrl.memory.store import open_memory

TASKS = ["What is 3 + 4?", "What is 12 - 5?", "Spell 'cat' backwards"]


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as Training-Free GRPO leaves it: worked cases under `tfgrpo`, Q in cases_q.json."""
    run = tmp_path / "run"
    mem = open_memory(run / "memory", embedder="hash-64", namespace="tfgrpo")
    mem.cases.upsert([CaseRecord(id=f"c{i}", task=t, trajectory=[f"answer {i}"], reward=r, success=r > 0.5, uses=i)
                      for i, (t, r) in enumerate(zip(TASKS, [1.0, 1.0, 0.0], strict=True))])  # fmt: skip
    q = QModel()
    q.update("e1", [("c1", 0.9, 1.0)], reward=1.0)  # c1 helped
    q.update("e2", [("c0", 0.9, 1.0)], reward=0.0)  # c0 did not
    q.save(run / "cases_q.json")
    return run


def test_case_view_lists_cases_by_learned_utility_with_uses(run_dir):
    view = case_view(run_dir)
    assert view.namespace == "tfgrpo" and view.total == 3 and view.q_path.endswith("cases_q.json")
    # b_c1 = 0.3·(1 − 0); then θ = 0.05·(0.9, 1), so Q(c0) = 0.0905 and b_c0 = 0.3·(0 − 0.0905)
    assert [r.id for r in view.rows] == ["c1", "c2", "c0"]
    assert view.rows[2].utility == pytest.approx(-0.02715)
    c1 = view.rows[0]
    assert c1.utility == pytest.approx(0.3) and c1.updates == 1 and c1.uses == 1 and c1.reward == 1.0
    assert view.rows[1].utility == 0.0 and view.rows[1].updates == 0
    assert view.theta is not None and len(view.theta) == 2


def test_case_view_for_a_query_ranks_as_retrieval_does(run_dir):
    view = case_view(run_dir, query="What is 3 + 4?")
    top = view.rows[0]
    assert top.similarity is not None and top.q is not None
    assert top.score == pytest.approx(top.similarity + top.q)  # w_sim = w_q = 1 by default
    assert [r.score for r in view.rows] == sorted((r.score for r in view.rows), reverse=True)
    q = QModel.load(run_dir / "cases_q.json")
    assert top.q == pytest.approx(q.value(top.id, top.similarity, top.reward))


def test_memory_show_cases_cli(run_dir):
    r = CliRunner().invoke(app, ["memory", "show", str(run_dir), "--cases"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "3 cases" in r.output and "cases_q.json" in r.output and "What is 12 - 5?" in r.output
    assert r.output.index("c1") < r.output.index("c0") and "0.300" in r.output and "-0.027" in r.output
    r = CliRunner().invoke(app, ["memory", "show", str(run_dir), "-q", "What is 3 + 4?", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["rows"][0]["score"] is not None


def test_memory_export_import_round_trip(run_dir, tmp_path):
    out = tmp_path / "cases.json"
    r = CliRunner().invoke(app, ["memory", "export", str(run_dir), "-o", str(out), "-n", "tfgrpo"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and len(doc["stores"]["cases"]) == 3
    target = tmp_path / "other"
    args = ["memory", "import", str(target), str(out), "-n", "shared", "--embedder", "hash-32"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "3 cases" in r.output, r.output
    mem = open_memory(target, embedder="hash-32", namespace="shared")
    assert sorted(c.task for c in mem.cases.all()) == sorted(TASKS)
    assert mem.cases.get("c1").uses == 1  # counters travel with the records
    # a second import upserts (no copies, others kept); --replace makes every store in the export hold its records only
    mem.cases.upsert([CaseRecord(id="extra", task="another task")])
    mem.experience.upsert([LessonRecord(id="L1", text="kept: another store")])
    CliRunner().invoke(app, ["memory", "import", str(target), str(out), "-n", "shared"])
    assert mem.cases.count() == 4 and mem.experience.count() == 1
    r = CliRunner().invoke(app, ["memory", "import", str(target), str(out), "-n", "shared", "--replace"])
    assert r.exit_code == 0 and mem.cases.count() == 3 and mem.experience.count() == 0  # exported empty


def test_memory_commands_name_the_missing_namespace_or_file(run_dir, tmp_path):
    r = CliRunner().invoke(app, ["memory", "export", str(run_dir), "-o", str(tmp_path / "x.json")])
    assert r.exit_code == 1 and "namespace 'default'" in r.output and "memrl memory stats" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"lessons": []}')
    r = CliRunner().invoke(app, ["memory", "import", str(run_dir), str(bad), "-n", "tfgrpo"])
    assert r.exit_code == 1 and "not a memrl memory export" in r.output
    open_memory(run_dir / "memory", embedder="hash-64", namespace="memento").cases.upsert(
        [CaseRecord(task="x")]
    )
    with pytest.raises(ConfigError, match="2 namespaces.*--namespace"):
        case_view(run_dir)
    with pytest.raises(ConfigError, match="Q file 'nope.json' not found"):
        case_view(run_dir, namespace="tfgrpo", q_path="nope.json")
    assert case_view(run_dir, namespace="memento").q_path is None  # no memento_q*.json beside it
