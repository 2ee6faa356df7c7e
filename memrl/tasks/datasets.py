"""Load the items a task file names and split them into train and test, seeded and deterministic.

`data.source` is a local `.jsonl`/`.json`/`.csv` file (relative to the task file's folder) or a packaged
set: `mmath:aime24|aime25|math500|cnmo`, `humaneval`, `gsm_symbolic`, `reasoning_gym:<name>`.

The split: the items (in source order) are shuffled with `random.Random(data.seed)`, cut to `data.size`,
and the first `test_size` of them (a count, or a fraction rounded and kept within [1, n-1]) are the test
set; the rest are train. The same spec and source always give the same split, and the two never share an
item, nor a question: a training item whose question is word for word one of the test split's (small generated
sets repeat: 3 of the quickstart's 40 sums, 4 of puzzle24's 40) is left out of training, with a warning, so
nothing held out can be learned as a case, a skill or a lesson. A generated set (reasoning-gym) is generated
with `data.size` items (100 when unset) from `data.seed`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from memrl.errors import DataError
from memrl.spec import DataSpec
from memrl.tasks.base import Split
from memrl.tasks.files import read_file_items
from memrl.tasks.packaged import humaneval_items, mmath_items
from memrl.tasks.rgym import reasoning_gym_items
from memrl.types import Item, question_key

__all__ = ["load_items", "load_split", "split_items", "PACKAGED_SOURCES"]

log = logging.getLogger(__name__)

PACKAGED_SOURCES = (
    "mmath:aime24",
    "mmath:aime25",
    "mmath:math500",
    "mmath:cnmo",
    "humaneval",
    "gsm_symbolic",
    "reasoning_gym:<name>",
)
_FILE_SUFFIXES = (".jsonl", ".json", ".csv")


def load_items(spec: DataSpec, base_dir: Path) -> list[Item]:
    """Every item of the source, in source order (generated sets: `spec.size` of them)."""
    source = spec.source.strip()
    kind, _, rest = source.partition(":")
    if Path(source).suffix.lower() in _FILE_SUFFIXES:
        path = Path(source).expanduser()
        return read_file_items(path if path.is_absolute() else base_dir / path, spec.fields)
    if spec.fields:
        raise DataError(f"data.fields applies to local files only, not to data.source {source!r}")
    if kind == "mmath" and rest:
        return mmath_items(rest, source)
    if source == "humaneval":
        return humaneval_items(source)
    if source == "gsm_symbolic":
        return reasoning_gym_items("gsm_symbolic", spec.params, spec.size, spec.seed, source)
    if kind == "reasoning_gym" and rest:
        return reasoning_gym_items(rest, spec.params, spec.size, spec.seed, source)
    raise DataError(
        f"data.source {source!r} is neither a .jsonl/.json/.csv file nor a packaged set; "
        f"packaged sets: {', '.join(PACKAGED_SOURCES)}"
    )


def _test_count(test_size: int | float, n: int) -> int:
    if isinstance(test_size, float):
        return min(max(round(n * test_size), 1), max(n - 1, 1))
    if test_size > n:
        raise DataError(f"data.test_size is {test_size} but only {n} items are available")
    return test_size


def split_items(items: list[Item], *, seed: int, size: int | None, test_size: int | float) -> Split:
    """Shuffle with `random.Random(seed)`, keep `size`, take the first `test_size` as test."""
    if not items:
        raise DataError("the dataset holds no items")
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    if size is not None:
        if size > len(shuffled):
            log.info(
                "data.size %d is more than the %d items available; using all of them", size, len(shuffled)
            )
        shuffled = shuffled[:size]
    n_test = _test_count(test_size, len(shuffled))
    test = shuffled[:n_test]
    asked = {question_key(it.question) for it in test}
    train = [it for it in shuffled[n_test:] if question_key(it.question) not in asked]
    if len(train) < len(shuffled) - n_test:
        log.warning(
            "%d training items ask a question of the test split word for word: left out of training, so nothing "
            "held out is learned (%d training items remain)", len(shuffled) - n_test - len(train), len(train),
        )  # fmt: skip
    if not train and len(shuffled) > n_test:
        raise DataError(
            "every training item repeats a test question: raise data.size or lower data.test_size"
        )
    return Split(train=train, test=test)


def load_split(spec: DataSpec, base_dir: Path) -> Split:
    """The task's train and test items."""
    items = load_items(spec, Path(base_dir))
    split = split_items(items, seed=spec.seed, size=spec.size, test_size=spec.test_size)
    log.info("%s: %d train, %d test items", spec.source, len(split.train), len(split.test))
    return split
