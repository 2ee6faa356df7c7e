"""Verifiers: judge one answer to one item. `build_verifier(spec)` makes the one a task file names.

A wrong, empty or malformed answer is never an exception: it is reward 0 with a reason. An item the
verifier cannot judge at all (no reference answer, no unit tests) raises VerifierError, because that is
the data's fault, not the answer's, and every answer would score 0 otherwise.

Kinds: `math` (final answer extracted and compared numerically or as normalised LaTeX, see
memrl.tasks.mathanswer), `exact`, `regex`, `python` (a user function), `code` (unit tests in a sandbox,
see memrl.tasks.code), `reasoning_gym` (the dataset's own scorer). `llm_judge` needs a model: the runner builds it
(memrl.tasks.judge.LLMJudge) with the run's cache and budgets.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memrl.errors import ConfigError, DataError, VerifierError
from memrl.spec import VerifierSpec
from memrl.tasks.base import Split, Verifier
from memrl.tasks.code import CodeVerifier
from memrl.tasks.mathanswer import answers_match, extract_answer
from memrl.tasks.rgym import score_with_dataset
from memrl.types import Item, Verdict

__all__ = [
    "build_verifier",
    "MathVerifier",
    "ExactVerifier",
    "RegexVerifier",
    "PythonVerifier",
    "ReasoningGymVerifier",
    "CodeVerifier",
    "resolve_function",
    "unjudgeable",
    "drop_unjudgeable",
]

log = logging.getLogger(__name__)


def _reference(item: Item, kind: str) -> str:
    if item.answer is None:
        raise VerifierError(f"item {item.id!r} has no reference answer, which the {kind!r} verifier needs")
    return item.answer


def _verdict(ok: bool, extracted: str | None, reason: str) -> Verdict:
    return Verdict(reward=1.0 if ok else 0.0, correct=ok, extracted=extracted, reason=reason)


class MathVerifier:
    """The final answer (last \\boxed{}, else the last number) equals the reference, as a number or
    as normalised LaTeX."""

    name = "math"

    async def verify(self, item: Item, answer: str) -> Verdict:
        reference = _reference(item, self.name)
        extracted = extract_answer(answer)
        if extracted is None:
            return _verdict(False, None, "no final answer found (no \\boxed{} and no number)")
        ok, reason = answers_match(extracted, reference)
        return _verdict(ok, extracted, reason)


def _clean(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split())
    return text if case_sensitive else text.casefold()


class ExactVerifier:
    """The whole answer, trimmed and with runs of whitespace collapsed, equals the reference."""

    name = "exact"

    def __init__(self, case_sensitive: bool = False) -> None:
        self.case_sensitive = case_sensitive

    async def verify(self, item: Item, answer: str) -> Verdict:
        reference = _reference(item, self.name)
        got = answer.strip()
        ok = _clean(got, self.case_sensitive) == _clean(reference, self.case_sensitive)
        return _verdict(ok, got, "exact match" if ok else f"expected {reference.strip()!r}")


class RegexVerifier:
    """The last match of `pattern` in the answer; its group 1 (the whole match if it has no group) must
    equal the reference. An item without a reference answer passes when the pattern matches at all."""

    name = "regex"

    def __init__(self, pattern: str, case_sensitive: bool = False) -> None:
        try:
            self.pattern = re.compile(pattern, re.DOTALL)
        except re.error as e:
            raise ConfigError(f"verifier.pattern is not a valid regex: {e}") from None
        self.case_sensitive = case_sensitive

    async def verify(self, item: Item, answer: str) -> Verdict:
        matches = list(self.pattern.finditer(answer))
        if not matches:
            return _verdict(False, None, f"no match for {self.pattern.pattern!r}")
        last = matches[-1]
        got = (last.group(1) if self.pattern.groups else last.group(0)) or ""
        if item.answer is None:
            return _verdict(True, got, "pattern matched (no reference answer)")
        ok = _clean(got, self.case_sensitive) == _clean(item.answer, self.case_sensitive)
        return _verdict(
            ok, got.strip(), "match" if ok else f"expected {item.answer.strip()!r}, got {got.strip()!r}"
        )


def unjudgeable(item: Item, kind: str) -> str | None:
    """Why a `kind` verifier cannot judge this item whatever the answer, or None when it can."""
    if kind in ("math", "exact") and not (item.answer or "").strip():
        return "no reference answer"
    test = item.meta.get("test")
    if kind == "code" and not (isinstance(test, str) and test.strip()):
        return "no unit tests (meta['test'])"
    return None


def drop_unjudgeable(split: Split, kind: str) -> Split:
    """Check every item before any model call: a few items the verifier cannot judge are skipped with a
    warning (at most 1 % of 20 or more); more are one error naming them, instead of a crash mid-run."""
    items = [*split.train, *split.test]
    bad = sorted(((it, why) for it in items if (why := unjudgeable(it, kind))), key=lambda b: b[0].id)
    if not bad:
        return split
    n = len(items)
    if len(bad) > (max(1, n // 100) if n >= 20 else 0):
        shown = ", ".join(repr(it.id) for it, _ in bad[:8]) + (", …" if len(bad) > 8 else "")
        raise DataError(
            f"{len(bad)} of {n} items cannot be judged by verifier {kind!r} ({bad[0][1]}): ids {shown}; "
            "fix those rows (data.fields names the columns) or choose another verifier.kind"
        )
    for it, why in bad:
        log.warning("skipping item %r: %s, which verifier %r needs", it.id, why, kind)
    gone = {it.id for it, _ in bad}
    return Split(
        train=[x for x in split.train if x.id not in gone], test=[x for x in split.test if x.id not in gone]
    )


def resolve_function(reference: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """`module:function` (or `path/to/file.py:function`, relative to base_dir) → the function."""
    module_name, sep, attr = reference.rpartition(":")
    if not sep or not module_name or not attr:
        raise VerifierError(f"verifier.function {reference!r} must look like 'module:function'")
    module: Any
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise VerifierError(f"verifier.function {reference!r}: file {str(path)!r} not found")
        spec = importlib.util.spec_from_file_location(f"memrl_user_verifier_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise VerifierError(f"verifier.function {reference!r}: {path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise VerifierError(f"verifier.function {reference!r}: importing {path} failed: {e!r}") from e
    else:
        added = base_dir is not None and str(base_dir) not in sys.path
        if added:
            sys.path.insert(0, str(base_dir))
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise VerifierError(
                f"verifier.function {reference!r}: cannot import module {module_name!r} ({e})"
            ) from e
        except Exception as e:
            raise VerifierError(
                f"verifier.function {reference!r}: importing {module_name!r} failed: {e!r}"
            ) from e
        finally:
            if added:
                sys.path.remove(str(base_dir))
    func = getattr(module, attr, None)
    if func is None:
        raise VerifierError(
            f"verifier.function {reference!r}: module {module_name!r} has no attribute {attr!r}"
        )
    if not callable(func):
        raise VerifierError(f"verifier.function {reference!r} is a {type(func).__name__}, not a function")
    return func


class PythonVerifier:
    """A user function `(item, answer) -> bool | float | Verdict`, sync or async.

    A float is the reward; `correct` is reward >= 1. If the function raises, the answer gets reward 0 with
    the error as the reason (and a warning is logged); a result of another type is a VerifierError.
    """

    def __init__(self, func: Callable[..., Any], name: str = "python") -> None:
        self.func = func
        self.name = name

    async def verify(self, item: Item, answer: str) -> Verdict:
        try:
            result = self.func(item, answer)
            if inspect.isawaitable(result):
                result = await result
        except Exception as e:
            log.warning("verifier %s raised on item %s: %r", self.name, item.id, e)
            return _verdict(False, None, f"verifier function raised {type(e).__name__}: {e}")
        if isinstance(result, Verdict):
            return result
        if isinstance(result, bool):
            return _verdict(result, None, "function returned " + str(result))
        if isinstance(result, (int, float)) and math.isfinite(result):
            reward = float(result)
            return Verdict(reward=reward, correct=reward >= 1.0, reason=f"function returned {reward:g}")
        raise VerifierError(
            f"verifier function {self.name} returned {result!r}; "
            "it must return a bool, a finite number or a Verdict"
        )


class ReasoningGymVerifier:
    """The item's reasoning-gym dataset scores the answer; the whole answer and its extracted final answer
    (`<answer>` tag, `\\boxed{}`, last number) are each scored and the best score counts."""

    name = "reasoning_gym"

    async def verify(self, item: Item, answer: str) -> Verdict:
        score, scored = score_with_dataset(item, answer)
        ok = score >= 1.0 - 1e-9
        return Verdict(reward=score, correct=ok, extracted=scored, reason=f"reasoning-gym score {score:g}")


def build_verifier(spec: VerifierSpec, base_dir: Path | None = None) -> Verifier:
    """The verifier a task file's `verifier` section names. `base_dir` resolves a python function's file."""
    if spec.kind == "math":
        return MathVerifier()
    if spec.kind == "exact":
        return ExactVerifier(case_sensitive=spec.case_sensitive)
    if spec.kind == "regex":
        if not spec.pattern:
            raise ConfigError("verifier.kind 'regex' needs verifier.pattern")
        return RegexVerifier(spec.pattern, case_sensitive=spec.case_sensitive)
    if spec.kind == "python":
        if not spec.function:
            raise ConfigError("verifier.kind 'python' needs verifier.function as 'module:function'")
        return PythonVerifier(resolve_function(spec.function, base_dir), name=spec.function)
    if spec.kind == "code":
        return CodeVerifier(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb)
    if spec.kind == "reasoning_gym":
        return ReasoningGymVerifier()
    if spec.kind == "llm_judge":
        raise ConfigError(
            "verifier.kind 'llm_judge' needs a model: build it with memrl.tasks.judge.LLMJudge(llm) "
            "(memrl run does this with verifier.judge_model, or the policy model)"
        )
    raise ConfigError(
        f"unknown verifier.kind {spec.kind!r}"
    )  # pragma: no cover - the spec's Literal forbids it
