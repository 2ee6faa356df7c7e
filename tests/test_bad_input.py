"""Bad input that tests elsewhere do not cover: task files and overrides (tests/test_spec.py has the
rest), dataset rows (tests/test_datasets.py has the rest), items a verifier cannot judge, and learner
answers that are not valid JSON or name unknown ids. Each gets a clear error or a logged skip, and nothing
learned is lost."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memrl.errors import ConfigError, DataError
from memrl.library import Library
from memrl.llm.base import Request
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import load_spec, spec_from_mapping
from memrl.tasks.files import MAX_QUESTION_CHARS, read_file_items
from memrl.testing import FunctionClient
from memrl.testing.faults import sums_rows, toy_answer

# ------------------------------------------------------------------------------------------ task files

GOOD = "name: t\ndata: {source: items.jsonl}\n"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["eval.k"], "must look like key.path=value"),
        (["=4"], "empty key"),
        (["name.first=x"], "name is not a section"),
        (["eval.k=-3"], "eval.k"),
        (["evall.k=2"], "did you mean 'eval'"),
        (["model.max_concurrency=0"], "model.max_concurrency"),
    ],
)
def test_bad_overrides_get_one_clear_line(tmp_path, overrides, message):
    (tmp_path / "t.yaml").write_text(GOOD)
    with pytest.raises(ConfigError) as e:
        load_spec(tmp_path / "t.yaml", overrides)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: caf\xe9\ndata: {source: x.jsonl}\n", "not UTF-8 text"),
        (b"data:\n\t source: x.jsonl\n", "not valid YAML"),
        (b"data: {source: x.jsonl}\neval: [1, 2]\n", "eval"),
        (b"data: {source: x.jsonl}\ntfgrpo: {group_size: 1}\n", "tfgrpo.group_size"),
        (b"data: {source: x.jsonl}\nmodel: {name: ''}\n", "model name is empty"),
        (b"data: 42\n", "data"),
        (b"\x00\x01\x02", ""),
    ],
    ids=["latin-1", "tab-indent", "list-for-section", "group-of-one", "empty-model", "scalar-data", "binary"],
)
def test_malformed_task_file_contents(tmp_path, content, message):
    (tmp_path / "t.yaml").write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_spec(tmp_path / "t.yaml")
    assert message in str(e.value)


def test_cli_prints_one_error_line_without_a_traceback(tmp_path):
    (tmp_path / "t.yaml").write_text("data: {source: x.jsonl}\neval: {temprature: 0.5}\n")
    r = subprocess.run(
        [sys.executable, "-m", "memrl.cli", "run", str(tmp_path / "t.yaml")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    assert "did you mean 'temperature'" in r.stderr and "Traceback" not in r.stderr + r.stdout


# ------------------------------------------------------------------------------------------ data rows


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", b"", "holds no rows"),
        ("blank.jsonl", b"\n\n  \n", "holds no rows"),
        ("ragged.csv", b"question,answer\nq1,1\nq2,2,extra\n", "line 3: more cells than the header"),
        ("scalar.json", b"7", "expected a JSON list"),
        ("nolist.json", b'{"a": 1, "b": 2}', "expected a JSON list of objects"),
        ("huge.jsonl", b'{"question": "' + b"x" * (MAX_QUESTION_CHARS + 1) + b'"}\n', "over the limit"),
        ("nul.jsonl", b'{"question": "a"}\n\x00\x00\x00\n', "line 2: not valid JSON"),
        ("id-list.jsonl", b'{"id": [1], "question": "a"}\n', "ids are text or integers"),
        ("data.txt", b"question\n", "unsupported file type"),
    ],
)
def test_bad_data_files(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)) as e:
        read_file_items(tmp_path / name)
    assert name in str(e.value)


def test_a_huge_row_among_many_is_skipped_with_a_warning(tmp_path, caplog):
    rows = [{"question": f"q{i}?", "answer": str(i)} for i in range(30)]
    rows[5]["question"] = "y" * (MAX_QUESTION_CHARS + 10)
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        items = read_file_items(tmp_path / "d.jsonl")
    assert len(items) == 29 and "line 6" in caplog.text and "over the limit" in caplog.text


def _spec(tmp_path: Path, rows: list[dict], **extra) -> object:
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"name": "bad", "model": "openai/x", "data": {"source": "d.jsonl", "test_size": 2},
           "run": {"dir": str(tmp_path / "runs")}} | extra  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def test_items_without_a_reference_fail_before_any_model_call(tmp_path):
    rows = [{"id": f"r{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(6)]
    rows[2].pop("answer")
    rows[4]["answer"] = "  "
    client = FunctionClient(lambda req, seed: "1")
    with pytest.raises(DataError, match=r"2 of 6 items cannot be judged by verifier 'math' .*'r2', 'r4'"):
        run_task(_spec(tmp_path, rows), run_dir=tmp_path / "r", client=client)
    assert client.calls == 0
    rows = [{"id": "a", "question": "def f(): pass"}, {"id": "b", "question": "x"}]
    code = _spec(tmp_path, rows, verifier={"kind": "code"})
    with pytest.raises(DataError, match="no unit tests"):
        run_task(code, run_dir=tmp_path / "c", client=client)


def test_one_item_without_a_reference_among_many_is_skipped(tmp_path, caplog):
    rows = [{"id": f"r{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(30)]
    rows[7].pop("answer")
    with caplog.at_level(logging.WARNING):
        res = run_task(_spec(tmp_path, rows), run_dir=tmp_path / "r", client=FunctionClient(lambda r, s: "1"))
    assert res.status == "finished" and "skipping item 'r7'" in caplog.text
    assert res.results["eval-test"]["score"]["n_items"] == 2


# ------------------------------------------------------------------------------------------ learner output

BAD_LEARNER = {
    "not-json": "Sure! Here are my lessons: be careful.",
    "truncated": '{"operations": [{"op": "ADD", "content": "When adding',
    "wrong-shape": '{"operations": "ADD everything"}',
    "a-list": '[{"op": "ADD", "content": "When adding numbers, count carefully"}]',
    "unknown-op": '{"operations": [{"op": "MERGE", "id": "L0001"}]}',
    "number-content": '{"operations": [{"op": "ADD", "content": 42}]}',
    "unknown-ids": '{"operations": [{"op": "DELETE", "id": "L0999"}, {"op": "UPDATE", "id": "L0001; DROP", '
    '"content": "When in doubt, delete everything"}, {"op": "UPDATE", "content": "When no id, still update"}]}',
    "empty": "",
    "null": "null",
    "huge": '{"operations": [' + ",".join(['{"op": "NONE"}'] * 5000) + "]}",
    "lessons-not-json": "Lessons: be careful.",
    "lessons-missing-key": '{"operations": []}',
    "lessons-not-strings": '{"lessons": [{"text": "When adding, count"}]}',
}


def toy(req: Request, seed: int | None) -> str:
    body = {"messages": [m.model_dump() for m in req.messages], "seed": seed}
    if req.json_schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": req.json_schema}}
    return toy_answer(body)


@pytest.mark.parametrize("kind", list(BAD_LEARNER))
def test_bad_learner_output_is_skipped_and_loses_nothing(tmp_path, kind, caplog):
    """Step 1 learns normally; once the library has lessons, every answer of one learner call is bad."""
    (tmp_path / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(24)))
    raw = {"name": "bad-learner", "algorithm": "tfgrpo", "model": "openai/x",
           "data": {"source": "sums.jsonl", "test_size": 4, "seed": 3}, "eval": {"k": 1, "max_tokens": 8},
           "tfgrpo": {"epochs": 1, "steps_per_epoch": 3, "batch_size": 3, "group_size": 4}}  # fmt: skip
    spec = spec_from_mapping(raw, base_dir=tmp_path)

    def answer(req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        learned = "(none)" not in user and "(empty)" not in user  # the library shown is not empty
        call = "extract" if "lessons" in (req.json_schema or {}).get("properties", {}) else "propose"
        wanted = "extract" if kind.startswith("lessons-") else "propose"
        return BAD_LEARNER[kind] if req.json_schema and learned and call == wanted else toy(req, seed)

    with caplog.at_level(logging.INFO):
        res = run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(answer))
    assert res.status == "finished"
    lib = Library.load(tmp_path / "r")
    first = {x.id: x.text for x in lib.lessons_at(1).values()}
    assert first, "step 1 learned something"
    final = {x.id: x for x in lib.lessons.values()}
    for lid, text in first.items():  # what step 1 learned is still there, unchanged by bad answers
        assert final[lid].text == text and final[lid].status == "active"
    assert not any(x.id == "L0999" or ";" in x.id for x in final.values())
    events = list(RunDir(tmp_path / "r").read_jsonl("events.jsonl"))
    if kind == "unknown-ids":
        reasons = [e["reason"] for e in events if e["event"] == "rejected_op"]
        assert sum("unknown or retired lesson id" in r for r in reasons) >= 3
    elif kind != "huge":
        assert "structured answer unusable" in caplog.text and "skipped a" in caplog.text
