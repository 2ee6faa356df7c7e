"""Final-answer extraction and comparison for math tasks.

Extraction: the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces; otherwise the last
``#### x`` line (GSM8K style); otherwise the final number in the text (a ``\\frac{a}{b}`` or ``a/b``
counts as one number).

Comparison: both sides are normalised (``$``, ``\\left``/``\\right``, spacing commands, ``\\dfrac`` and
``\\tfrac`` to ``\\frac``, ``\\text{}`` unwrapped, a leading ``x =`` dropped, a trailing period
dropped). If both read as numbers they are compared as exact fractions (``1000.0`` equals ``1000``); when
either side is written with three or more decimal places a relative tolerance of 1e-6 applies
(``0.3333333`` equals ``1/3``, ``0.33`` does not). Numbers may be written ``1,000``, ``1000.0``,
``\\frac{1}{2}``, ``\\frac12``, ``1/2``, ``0.5``, ``$5``, ``\\$5`` or ``5^\\circ``. A percent sign is
dropped and the number kept as written: ``50%`` equals ``50``, not ``0.5`` (answers to "what percent"
questions are given that way). Otherwise the normalised strings are compared, ignoring spaces.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["extract_boxed", "extract_answer", "normalize", "to_number", "answers_match"]

_BOX = re.compile(r"\\(?:boxed|fbox)\s*")
_NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
# The last number in a text: a LaTeX fraction, a slash fraction or a plain number (a minus sign that
# follows a word or a closing bracket is subtraction, not a sign).
_SIGN = r"(?:(?<![\w.)\]}])-)?"
_LATEX_FRAC = rf"\\[dt]?frac\{{\s*{_NUM}\s*\}}\{{\s*{_NUM}\s*\}}"
_NUMBER = re.compile(rf"{_SIGN}(?:{_LATEX_FRAC}|{_NUM}(?:\s*/\s*{_NUM}(?![\d/]))?)")
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.MULTILINE)


def _balanced(text: str, start: int) -> str | None:
    """The content of the brace group opening at text[start] == '{', or None if it never closes."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2  # an escaped character (\{, \}) never opens or closes a group
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def extract_boxed(text: str) -> str | None:
    """The content of the last complete ``\\boxed{...}`` in text (``\\boxed 5`` also counts)."""
    for m in reversed(list(_BOX.finditer(text))):
        end = m.end()
        if end < len(text) and text[end] == "{":
            inner = _balanced(text, end)
            if inner is not None:
                return inner.strip()
        else:
            bare = re.match(r"([^\s$]+)", text[end:])
            if bare and m.group(0).endswith(" "):
                return bare.group(1)
    return None


def extract_answer(text: str) -> str | None:
    """The final answer in a model's text: boxed, then ``#### x``, then the last number."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(text)
    if hashes:
        return str(hashes[-1])
    numbers = [m.group(0) for m in _NUMBER.finditer(text)]
    if numbers:
        return numbers[-1]
    return None


def _unwrap(s: str, command: str) -> str:
    """Replace every ``\\command{X}`` by X (balanced braces)."""
    key = "\\" + command + "{"
    while True:
        i = s.find(key)
        if i < 0:
            return s
        inner = _balanced(s, i + len(key) - 1)
        if inner is None:
            return s
        s = s[:i] + inner + s[i + len(key) + len(inner) + 1 :]


def normalize(s: str) -> str:
    """A canonical string form of an answer, for comparison."""
    s = s.strip()
    s = s.replace("\\$", "").replace("$", "")
    for cmd in ("text", "textbf", "textrm", "mathrm", "mathbf", "mbox"):
        s = _unwrap(s, cmd)
    s = re.sub(r"\\(?:left|right|displaystyle)\b", "", s)
    s = re.sub(r"\\[,;:! ]", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = s.replace("{,}", ",")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = s.replace("\\%", "%")
    # A leading "x =" (one short name) is not part of the answer.
    m = re.match(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(.+)$", s)
    if m and "=" not in m.group(1):
        s = m.group(1)
    s = s.strip().rstrip(".").strip()
    return re.sub(r"\s+", " ", s)


_FRAC = re.compile(r"^(-?)\\frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}$")
_SLASH = re.compile(r"^(-?[\d.]+)\s*/\s*(-?[\d.]+)$")


def _plain(s: str) -> Fraction | None:
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def to_number(s: str) -> Fraction | None:
    """The exact value of a numeric answer, or None when it is not a plain number or fraction."""
    s = normalize(s).replace(" ", "").rstrip("%")
    if not s:
        return None
    value = _plain(s)
    if value is not None:
        return value
    m = _FRAC.match(s)
    if m:
        num, den = _plain(m.group(2)), _plain(m.group(3))
        if num is None or den is None or den == 0:
            return None
        return -num / den if m.group(1) else num / den
    m = _SLASH.match(s)
    if m:
        num, den = _plain(m.group(1)), _plain(m.group(2))
        if num is None or den is None or den == 0:
            return None
        return num / den
    return None


def _decimal_places(s: str) -> int:
    m = re.search(r"\.(\d+)", s)
    return len(m.group(1)) if m else 0


def answers_match(predicted: str, reference: str) -> tuple[bool, str]:
    """Whether two answers agree, with a short reason."""
    p_num, r_num = to_number(predicted), to_number(reference)
    if p_num is not None and r_num is not None:
        if p_num == r_num:
            return True, "numeric match"
        # A rounded decimal (0.333) may stand for a fraction (1/3): allow a relative tolerance
        # when either side was written with several decimal places.
        if max(_decimal_places(predicted), _decimal_places(reference)) >= 3 and math.isclose(
            float(p_num), float(r_num), rel_tol=1e-6 if min(abs(p_num), abs(r_num)) > 0 else 0, abs_tol=1e-9
        ):
            return True, "numeric match within tolerance"
        return False, f"expected {reference.strip()}, got {predicted.strip()}"
    p_norm, r_norm = normalize(predicted).replace(" ", ""), normalize(reference).replace(" ", "")
    if p_norm and p_norm == r_norm:
        return True, "normalised string match"
    return False, f"expected {reference.strip()}, got {predicted.strip()}"
