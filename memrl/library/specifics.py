"""Does a lesson carry over to other problems? A lesson that repeats a specific number or name of its own
group's question describes that question, not a kind of problem (the old rule banned every digit instead, so
no lesson could carry a formula, a unit or an answer format)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["copied_specifics", "task_terms", "talks_about_itself"]

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
#: Capitalised words that start sentences of questions: never a problem's own name.
_NOT_NAMES = frozenset(
    """
    What How Why Where When Which Who Whom Whose If Then The This That These Those There Here And But Or So For
    From With Without After Before During Each Every All Some Any One Two Three Four Five Six Seven Eight Nine
    Ten Calculate Compute Find Give Answer Solve Determine Round Express Write Let Suppose Given Assume Using
    Use She Her Hers His Him They Them Their Its Our Your You We Is Are Was Were Do Does Did Can Could Will
    Would Should Must May Might Please Note Only Also Now First Second Third Next Finally Total Sum Question
    Problem Reply Return Show Explain Consider Start Begin Put Make Take Add Subtract Multiply Divide Count
    Check Keep Not Yes Into Over Under About Between Among Per Out Off Once Twice Half
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def _number_value(token: str) -> str:
    return token.replace(",", "")


def _generic_number(value: str) -> bool:
    """0, 1 and powers of ten (percentages, place value) are general; other numbers belong to a problem."""
    return value in {"0", "1"} or re.fullmatch(r"10+", value) is not None


def _specifics(question: str) -> tuple[set[str], set[str]]:
    numbers = {_number_value(t) for t in _NUMBER.findall(question)}
    return {n for n in numbers if not _generic_number(n)}, {
        w for w in _NAME.findall(question) if w not in _NOT_NAMES
    }


#: A number or name in at least this share of a task's questions (and at least `_MIN_QUESTIONS` of them) is
#: the task's own vocabulary ("Sudoku" and "4" in every 4x4 sudoku), not one question's data.
_TASK_SHARE = 0.5
_MIN_QUESTIONS = 4


def task_terms(questions: Iterable[str]) -> frozenset[str]:
    """The numbers and names most of `questions` share: the task's vocabulary, which a general lesson may use.

    A one-family task states its kind and size in every question; without this, "When solving a Sudoku, try
    each number from 1 to 4 in turn" repeats its question's "Sudoku" and "4" and was rejected. Computed from
    the training questions only (held-out questions are never passed)."""
    qs = list(dict.fromkeys(q for q in questions if q))
    if len(qs) < _MIN_QUESTIONS:
        return frozenset()
    counts: Counter[str] = Counter()
    for q in qs:
        numbers, names = _specifics(q)
        counts.update(numbers | names)
    return frozenset(t for t, c in counts.items() if c >= _TASK_SHARE * len(qs))


def copied_specifics(text: str, question: str, common: frozenset[str] = frozenset()) -> list[str]:
    """The numbers and names of `question` that `text` repeats (empty when the text is general); terms in
    `common` (`task_terms` of the training questions) belong to the task and are allowed."""
    if not question:
        return []
    numbers, names = _specifics(question)
    numbers, names = numbers - common, names - common
    found = [n for n in dict.fromkeys(_number_value(t) for t in _NUMBER.findall(text)) if n in numbers]
    found += [w for w in dict.fromkeys(_NAME.findall(text)) if w in names]
    return found


_SELF = re.compile(
    r"\b(?:lessons?|library)\b"  # a lesson about lessons
    r"|\b(?:new|previous|original|improved|updated)\s+(?:text|version|one)\b",  # about its own revision
    re.IGNORECASE,
)


def talks_about_itself(text: str) -> bool:
    """A text about "the new lesson" or "the library" instead of about the task: what a learner too small to
    follow the instructions writes ("The new lesson is incomplete. The previous one was incomplete.")."""
    return _SELF.search(text) is not None
