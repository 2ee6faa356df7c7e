"""The `code` verifier: HumanEval-style unit tests run on the answer in the sandbox.

The program is the item's prompt (its question), the answer's code, the item's `meta["test"]` and
`check(<entry_point>)`, then a line printing a random token: the answer passes only when the program
exits 0 *and* printed that token, so code that calls `sys.exit(0)` before the tests does not pass.

The answer's code is the content of its ```python fenced block (the one defining the entry point when
there are several), else the whole answer. When that code defines the entry point it replaces the
prompt's stub; otherwise it is taken as the function body that continues the prompt.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import textwrap
import weakref

from memrl.errors import VerifierError
from memrl.tasks.sandbox import arun_python
from memrl.types import Item, Verdict

__all__ = ["CodeVerifier", "extract_code", "build_program", "code_blocks"]

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def code_blocks(answer: str) -> list[str]:
    """The non-empty fenced Python blocks of an answer, in order (an unclosed last block counts)."""
    return [b for b in _FENCE.findall(answer) if b.strip()]


def extract_code(answer: str, entry_point: str | None = None) -> str:
    """The code in a model's answer: a fenced block if there is one, else the answer itself."""
    blocks = code_blocks(answer)
    if not blocks:
        return answer
    if entry_point:
        defining = [b for b in blocks if _defines(b, entry_point)]
        if defining:
            return defining[-1]
    return blocks[-1]


def build_program(item: Item, answer: str, token: str = "") -> str:
    """The full test program for one answer; with a token, the program prints it after the tests pass."""
    test = item.meta.get("test")
    entry_point = item.meta.get("entry_point")
    if not isinstance(test, str) or not test.strip():
        raise VerifierError(
            f"item {item.id!r} has no meta['test'] (the unit tests): the code verifier needs items like "
            "humaneval's, or a 'test' column in the data file"
        )
    code = extract_code(answer, entry_point if isinstance(entry_point, str) else None)
    if isinstance(entry_point, str) and _defines(code, entry_point):
        body = item.question.rstrip() + "\n\n\n" + textwrap.dedent(code).strip("\n") + "\n"
    elif code.startswith((" ", "\t")) or not item.question.strip():
        body = item.question + code
    else:
        # A body written without indentation: indent it under the prompt's signature.
        body = item.question.rstrip() + "\n" + textwrap.indent(textwrap.dedent(code), "    ")
    program = body + "\n\n" + test + "\n"
    if isinstance(entry_point, str) and entry_point:
        program += f"\n\ncheck({entry_point})\n"
    if token:
        program += f"\nprint({token!r}, flush=True)\n"
    return program


class CodeVerifier:
    """Runs the item's unit tests on the answer; reward 1 when they all pass."""

    name = "code"

    def __init__(
        self, timeout_s: float = 10.0, memory_mb: int = 512, max_parallel: int | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_parallel = max_parallel or max(1, os.cpu_count() or 1)
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _limit(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._limits:
            self._limits[loop] = asyncio.Semaphore(self.max_parallel)
        return self._limits[loop]

    async def verify(self, item: Item, answer: str) -> Verdict:
        token = f"memrl-tests-passed-{secrets.token_hex(8)}"
        program = build_program(item, answer, token)
        if not answer.strip():
            return Verdict(reward=0.0, correct=False, extracted="", reason="empty answer")
        async with self._limit():
            result = await arun_python(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        extracted = extract_code(answer, item.meta.get("entry_point"))
        if result.ok and token not in result.stdout:
            return Verdict(
                reward=0.0,
                correct=False,
                extracted=extracted,
                reason="the program exited before the tests ran",
            )
        if result.ok:
            return Verdict(reward=1.0, correct=True, extracted=extracted, reason="all tests passed")
        return Verdict(
            reward=0.0, correct=False, extracted=extracted, reason=f"tests failed: {result.summary()}"
        )
