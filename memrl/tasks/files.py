"""Items from a local .jsonl, .json or .csv file.

Columns: `fields` maps memrl's names (`id`, `question`, `answer`) to the file's columns. Without a mapping
the first column present from a list of common names is used (`question`, `problem`, `prompt`, ...;
`answer`, `final_answer`, `target`, ...; `id`, `task_id`, ...). Every other column goes to `Item.meta`.
Item ids come from the id column, else the row's position in the file (0-based, counting every row), so
they stay stable when other rows are fixed.

Bad rows (not valid JSON, not an object, undecodable bytes, the question missing, empty, not text or
over MAX_QUESTION_CHARS, an answer that is a list or object) raise a DataError naming the file, the line or row, and the field. The
one exception is a stray bad row in a large file: when the file has at least 20 rows and no more than
max(1, 1 %) of them are bad, those rows are skipped with a warning each, so one broken line does not stop
a long run. A column that no row has, a duplicate id, or a missing file is always an error.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from memrl.errors import DataError
from memrl.types import Item

__all__ = ["read_file_items", "QUESTION_COLUMNS", "ANSWER_COLUMNS", "ID_COLUMNS"]

log = logging.getLogger(__name__)

QUESTION_COLUMNS = ("question", "problem", "prompt", "input", "query", "instruction")
ANSWER_COLUMNS = ("answer", "final_answer", "target", "expected", "output", "label", "ground_truth", "gold")
ID_COLUMNS = ("id", "task_id", "uid", "qid", "idx")
MEMRL_FIELDS = ("id", "question", "answer")
#: A longer question is a bad row: it would only come back from the provider as a context-length error.
MAX_QUESTION_CHARS = 400_000


class _Row(BaseModel):
    where: str  # "line 7" or "row 7" or "item 7"
    index: int  # 0-based position among the file's rows
    data: dict[str, Any] | None = None
    problem: str | None = None  # why the row could not be read at all


#: Byte-order marks of encodings that are not UTF-8 (UTF-32's first: it starts like UTF-16's).
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _not_utf8(e: UnicodeDecodeError, offset: int, path: Path) -> str:
    """Why a row's bytes could not be decoded, where, and how to fix the file."""
    bad = e.object[e.start : e.start + 1].hex()
    return (
        f"bytes that are not UTF-8 text ({e.reason}: 0x{bad} at byte offset {offset}); memrl reads UTF-8 "
        f"only: save the file as UTF-8, e.g. iconv -f cp1252 -t utf-8 {path.name} > utf8-{path.name}"
    )


def _decode_error(path: Path, raw: bytes, e: UnicodeDecodeError) -> DataError:
    line = raw[: e.start].count(b"\n") + 1
    return DataError(f"{path}: line {line}: {_not_utf8(e, e.start, path)}")


def _check_bom(path: Path, raw: bytes) -> None:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise DataError(
                f"{path}: the file is {encoding} text (it starts with a {encoding} byte-order mark); memrl "
                f"reads UTF-8 only: save it as UTF-8, e.g. iconv -f {encoding} -t utf-8 {path.name} > "
                f"utf8-{path.name}"
            )


def _jsonl_rows(path: Path, raw: bytes) -> list[_Row]:
    rows: list[_Row] = []
    start = 0  # byte offset of the line in the file
    for n, chunk in enumerate(raw.split(b"\n"), start=1):
        start, offset = start + len(chunk) + 1, start
        if not chunk.strip():
            continue
        where, index = f"line {n}", len(rows)
        try:
            text = chunk.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            rows.append(_Row(where=where, index=index, problem=_not_utf8(e, offset + e.start, path)))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            rows.append(_Row(where=where, index=index, problem=f"not valid JSON ({e.msg}, column {e.colno})"))
            continue
        if not isinstance(value, dict):
            rows.append(
                _Row(where=where, index=index, problem=f"a JSON {type(value).__name__}, not an object")
            )
            continue
        rows.append(_Row(where=where, index=index, data=value))
    return rows


def _json_rows(path: Path, raw: bytes) -> list[_Row]:
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise _decode_error(path, raw, e) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON ({e.msg})") from None
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(
                f"{path}: expected a JSON list of objects, or an object holding one such list; "
                f"found an object with keys {sorted(value)[:10]}"
            )
        value = value[lists[0]]
    if not isinstance(value, list):
        raise DataError(f"{path}: expected a JSON list of objects, found a {type(value).__name__}")
    rows = []
    for i, v in enumerate(value):
        where = f"item {i}"
        if isinstance(v, dict):
            rows.append(_Row(where=where, index=i, data=v))
        else:
            rows.append(_Row(where=where, index=i, problem=f"a JSON {type(v).__name__}, not an object"))
    return rows


def _csv_rows(path: Path, raw: bytes) -> list[_Row]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _decode_error(path, raw, e) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for i, record in enumerate(reader):
            where = f"line {reader.line_num}"
            if None in record:  # more cells than header columns
                rows.append(_Row(where=where, index=i, problem="more cells than the header has columns"))
                continue
            # Empty cells are absent values, not empty strings.
            data = {k: (v if v != "" else None) for k, v in record.items() if k is not None}
            rows.append(_Row(where=where, index=i, data=data))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    return rows


_READERS = {".jsonl": _jsonl_rows, ".json": _json_rows, ".csv": _csv_rows}


def _resolve_columns(path: Path, fields: dict[str, str], columns: set[str]) -> dict[str, str | None]:
    unknown = set(fields) - set(MEMRL_FIELDS)
    if unknown:
        raise DataError(
            f"data.fields: unknown memrl field(s) {sorted(unknown)}; map only {', '.join(MEMRL_FIELDS)}"
        )
    shown = ", ".join(sorted(columns)[:20]) or "(none)"
    chosen: dict[str, str | None] = {}
    for name, candidates in (("question", QUESTION_COLUMNS), ("answer", ANSWER_COLUMNS), ("id", ID_COLUMNS)):
        if name in fields:
            col = fields[name]
            if col not in columns:
                near = difflib.get_close_matches(col, sorted(columns), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise DataError(
                    f"{path}: no row has the column {col!r} (data.fields.{name}){hint} Columns: {shown}"
                )
            chosen[name] = col
        else:
            chosen[name] = next((c for c in candidates if c in columns), None)
    if chosen["question"] is None:
        raise DataError(
            f"{path}: no question column (looked for {', '.join(QUESTION_COLUMNS)}); columns are: {shown}. "
            "Name it with data.fields.question"
        )
    return chosen


def _to_item(row: _Row, cols: dict[str, str | None]) -> Item | str:
    """The row as an Item, or the reason it is bad."""
    if row.data is None:
        return row.problem or "unreadable"
    data = row.data
    qcol, acol, icol = cols["question"], cols["answer"], cols["id"]
    assert qcol is not None
    question = data.get(qcol)
    if question is None:
        return f"field {qcol!r} (question) is missing"
    if not isinstance(question, str):
        return f"field {qcol!r} (question) is a {type(question).__name__}, not text"
    if not question.strip():
        return f"field {qcol!r} (question) is empty"
    if len(question) > MAX_QUESTION_CHARS:
        return (
            f"field {qcol!r} (question) is {len(question):,} characters, over the limit of "
            f"{MAX_QUESTION_CHARS:,} (no model takes that much; is a whole document in one cell?)"
        )
    answer = data.get(acol) if acol else None
    if isinstance(answer, (list, dict)):
        return f"field {acol!r} (answer) is a {type(answer).__name__}; give the answer as text or a number"
    raw_id = data.get(icol) if icol else None
    if isinstance(raw_id, (list, dict, float)):
        return f"field {icol!r} (id) is a {type(raw_id).__name__}; ids are text or integers"
    item_id = str(raw_id) if raw_id is not None and str(raw_id).strip() else str(row.index)
    meta = {k: v for k, v in data.items() if k not in (qcol, acol, icol)}
    return Item(id=item_id, question=question, answer=None if answer is None else str(answer), meta=meta)


def _tolerated(n_rows: int) -> int:
    return max(1, n_rows // 100) if n_rows >= 20 else 0


def read_file_items(path: Path, fields: dict[str, str] | None = None) -> list[Item]:
    """All items of a local data file, in file order."""
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .jsonl, .json or .csv")
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} not found")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    _check_bom(path, raw)
    rows = _READERS[suffix](path, raw)
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    if all(r.data is None for r in rows):  # say why, not that the unread rows have no question column
        raise DataError(
            f"{path}: none of its {len(rows)} row(s) could be read; {rows[0].where}: {rows[0].problem}"
        )
    columns = {k for r in rows if r.data for k in r.data}
    cols = _resolve_columns(path, fields or {}, columns)

    items: list[Item] = []
    bad: list[str] = []
    seen: dict[str, str] = {}
    for row in rows:
        made = _to_item(row, cols)
        if isinstance(made, str):
            bad.append(f"{path}: {row.where}: {made}")
            continue
        if made.id in seen:
            raise DataError(f"{path}: {row.where}: duplicate id {made.id!r} (first at {seen[made.id]})")
        seen[made.id] = row.where
        items.append(made)

    if bad:
        if len(bad) > _tolerated(len(rows)):
            more = f"\n… and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise DataError(f"{len(bad)} bad row(s) of {len(rows)}:\n" + "\n".join(bad[:5]) + more)
        for b in bad:
            log.warning("skipping a bad row: %s", b)
    return items
