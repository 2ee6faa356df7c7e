"""FunctionClient: a raw model client whose answer is a pure function of the request and the seed.

Wrapped in `ManagedLLM` (or passed to `run_task(client=...)`) it goes through the real cache, retry,
budget and concurrency code, and two runs with the same inputs get the same answers, which makes
kill-and-resume tests exact.
"""

from __future__ import annotations

from collections.abc import Callable

from memrl.llm.base import Request
from memrl.types import Completion, Usage

__all__ = ["FunctionClient"]


class FunctionClient:
    native_n = False

    def __init__(self, answer: Callable[[Request, int | None], str], model: str = "function") -> None:
        self.answer = answer
        self.model = model
        self.calls = 0

    async def complete_once(self, request: Request, n: int = 1, seed: int | None = None) -> list[Completion]:
        self.calls += 1
        text = self.answer(request, seed)
        usage = Usage(
            prompt_tokens=sum(len(m.content.split()) for m in request.messages),
            completion_tokens=len(text.split()),
            calls=1,
        )
        return [Completion(text=text, finish_reason="stop", usage=usage, model=self.model)]
