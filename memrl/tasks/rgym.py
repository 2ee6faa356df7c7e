"""reasoning-gym: generated, seeded datasets (`gsm_symbolic`, `reasoning_gym:<name>`) and their scorers.

Each item keeps what is needed to rebuild its dataset in `meta["reasoning_gym"]` (name, size, seed,
params, index) and the entry's metadata in `meta["metadata"]`, so the `reasoning_gym` verifier can call the
dataset's own `score_answer` even on items that went through a JSON file and back.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import re
from typing import Any

from pydantic import BaseModel, Field

from memrl.errors import DataError, VerifierError
from memrl.tasks.mathanswer import extract_answer, extract_boxed
from memrl.types import Item

__all__ = ["RGMeta", "DEFAULT_SIZE", "reasoning_gym_items", "score_with_dataset"]

log = logging.getLogger(__name__)

#: How many items a generated dataset has when data.size is not given.
DEFAULT_SIZE = 100

_INSTALL = "pip install 'memrl[data]'"


class RGMeta(BaseModel):
    """Enough to rebuild one reasoning-gym entry."""

    name: str
    size: int
    seed: int
    params: dict[str, Any] = Field(default_factory=dict)
    index: int


def _import(source: str, error: type[Exception]) -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise error(
            f"{source!r} needs the reasoning-gym package, which is not installed: {_INSTALL}"
        ) from None
    return reasoning_gym


@functools.lru_cache(maxsize=32)
def _dataset(name: str, size: int, seed: int, params_json: str) -> Any:
    rg = _import(f"reasoning_gym:{name}", VerifierError)
    return rg.create_dataset(name, size=size, seed=seed, **json.loads(params_json))


def reasoning_gym_items(
    name: str, params: dict[str, Any], size: int | None, seed: int, source: str
) -> list[Item]:
    """Generate `size` items (DEFAULT_SIZE when None) of one reasoning-gym dataset."""
    rg = _import(source, DataError)
    from reasoning_gym.factory import DATASETS

    if name not in DATASETS:
        near = difflib.get_close_matches(name, list(DATASETS), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; {len(DATASETS)} datasets exist"
        raise DataError(f"data.source {source!r}: reasoning-gym has no dataset {name!r}{hint}")
    params = dict(params)
    for key in ("size", "seed"):
        if key in params:
            raise DataError(f"data.params.{key}: set data.{key} instead of passing it as a dataset parameter")
    n = size or DEFAULT_SIZE
    try:
        params_json = json.dumps(params, sort_keys=True)
    except TypeError as e:
        raise DataError(f"data.params must be plain values (numbers, text, lists): {e}") from None
    try:
        dataset = rg.create_dataset(name, size=n, seed=seed, **params)
    except (TypeError, ValueError, AssertionError) as e:
        raise DataError(f"data.params for reasoning-gym {name!r} are not accepted: {e}") from None
    items = []
    for i in range(n):
        entry = dataset[i]
        answer = entry.get("answer")
        meta = {
            "reasoning_gym": RGMeta(name=name, size=n, seed=seed, params=params, index=i).model_dump(),
            "metadata": entry.get("metadata", {}),
        }
        items.append(
            Item(
                id=f"{name}-s{seed}-{i}",
                question=str(entry["question"]),
                answer=None if answer is None else str(answer),
                meta=meta,
            )
        )
    log.debug("generated %d %s items (seed %d, params %s)", n, name, seed, params_json)
    return items


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def _candidates(answer: str) -> list[str]:
    """The texts to score: the marked final answer in the usual forms, then the whole answer (on a tie
    the first wins, so a verdict shows the short extracted answer)."""
    found = []
    tags = _ANSWER_TAG.findall(answer)
    if tags:
        found.append(tags[-1])
    found += [extract_boxed(answer) or "", extract_answer(answer) or "", answer]
    unique: list[str] = []
    for c in (f.strip() for f in found):
        if c and c not in unique:
            unique.append(c)
    return unique


def score_with_dataset(item: Item, answer: str) -> tuple[float, str | None]:
    """The best score the item's own dataset gives the answer or its extracted final answer."""
    raw = item.meta.get("reasoning_gym")
    if raw is None:
        raise VerifierError(
            f"item {item.id!r} has no meta['reasoning_gym']: the reasoning_gym verifier needs items from "
            "data.source 'gsm_symbolic' or 'reasoning_gym:<name>'"
        )
    ref = RGMeta.model_validate(raw)
    try:
        dataset = _dataset(ref.name, ref.size, ref.seed, json.dumps(ref.params, sort_keys=True))
        entry = dataset[ref.index]
    except VerifierError:
        raise
    except Exception as e:
        raise VerifierError(
            f"item {item.id!r}: cannot rebuild reasoning-gym dataset {ref.name!r}: {e}"
        ) from e
    if entry.get("question") != item.question:
        raise VerifierError(
            f"item {item.id!r}: the rebuilt reasoning-gym entry differs from the item (another reasoning-gym "
            "version?); regenerate the items"
        )
    best, best_text = 0.0, None
    for text in _candidates(answer):
        try:
            score = float(dataset.score_answer(text, entry))
        except Exception as e:  # a scorer choking on odd text is a wrong answer, not a crash
            log.debug("score_answer raised on %r: %s", text[:80], e)
            continue
        if score > best or best_text is None:
            best, best_text = score, text
    return best, best_text
