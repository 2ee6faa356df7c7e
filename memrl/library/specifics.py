"""Does a lesson carry over to other problems? A lesson that repeats a specific number or name of its own
group's question describes that question, not a kind of problem (the old rule banned every digit instead, so
no lesson could carry a formula, a unit or an answer format)."""

from __future__ import annotations

import re

__all__ = ["copied_specifics", "talks_about_itself"]

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


def copied_specifics(text: str, question: str) -> list[str]:
    """The numbers and names of `question` that `text` repeats (empty when the text is general)."""
    if not question:
        return []
    numbers = {_number_value(t) for t in _NUMBER.findall(question)}
    numbers = {n for n in numbers if not _generic_number(n)}
    names = {w for w in _NAME.findall(question) if w not in _NOT_NAMES}
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
