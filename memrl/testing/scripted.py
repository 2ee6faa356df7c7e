"""ScriptedLLM: an `LLM` that answers from a script and records every request, for unit tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from memrl.llm.base import Request
from memrl.types import Completion, Usage

__all__ = ["ScriptedLLM"]

Reply = str | Callable[[Request], str]


class ScriptedLLM:
    """Answers each sample with the next scripted reply (a string, or a function of the request).

    `assert_consumed()` fails when replies are left over, so a test sees when the code under test made
    fewer calls than it scripted for.
    """

    def __init__(
        self, replies: Iterable[Reply] = (), *, default: Reply | None = None, name: str = "scripted"
    ) -> None:
        self.name = name
        self.replies: list[Reply] = list(replies)
        self.default = default
        self.requests: list[tuple[Request, str]] = []  # (request, phase)

    def _next(self, request: Request) -> str:
        if self.replies:
            r = self.replies.pop(0)
        elif self.default is not None:
            r = self.default
        else:
            raise AssertionError(f"ScriptedLLM ran out of replies at request {len(self.requests)}")
        return r(request) if callable(r) else r

    async def complete(
        self, request: Request, *, n: int = 1, phase: str = "default", salt: str = ""
    ) -> list[Completion]:
        out = []
        for _ in range(n):
            self.requests.append((request, phase))
            text = self._next(request)
            out.append(
                Completion(
                    text=text,
                    finish_reason="stop",
                    usage=Usage(
                        prompt_tokens=sum(len(m.content.split()) for m in request.messages),
                        completion_tokens=len(text.split()),
                        calls=1,
                    ),
                    model=self.name,
                )
            )
        return out

    def assert_consumed(self) -> None:
        assert not self.replies, f"{len(self.replies)} scripted replies were never used"
