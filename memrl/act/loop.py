"""A tool-using answer: the model may write a ```python block; memrl runs it in the sandbox (with any
preloaded skill code defined first) and shows what it printed, or the error, on the next turn.

Budgets: at most `act.max_turns` model calls and `act.max_tokens` generated tokens per answer. With
`act.finish: output` (the default) a program that runs and prints something ends the answer and what it
printed is the final answer (one model call when the first program works); with `finish: model` the model
sees the output and writes the final answer itself. A failing program — an exception, a timeout, nothing
printed — is shown to the model, never raised. Without `act:` an `Actor` is the plain model call.

Requests and salts: the first turn of all n samples is one request (`n` samples, the caller's salt); a later
turn of sample i is its own request salted `<salt>:<i>:t<turn>`, so a resumed run replays every turn from
the response cache.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from memrl.llm.base import LLM, Request
from memrl.prompts import load_prompt
from memrl.spec import ActSpec
from memrl.tasks.code import code_blocks
from memrl.tasks.sandbox import arun_python
from memrl.types import Completion, Message, ToolStep, Usage

__all__ = ["Actor", "Preload", "transcript"]

#: Longest program output shown back to the model, and longest printed text taken as a final answer.
SHOWN_CHARS = 800
ANSWER_CHARS = 2000


@dataclass(frozen=True)
class Preload:
    """Code defined in the sandbox before the model's program runs (verified skills), and the names the
    model is told it can call."""

    code: str = ""
    names: tuple[str, ...] = field(default_factory=tuple)


def _tail(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def transcript(c: Completion) -> str:
    """What a tool-using answer did, turn by turn, for the learner; a plain answer is its text."""
    if not c.steps:
        return c.text
    parts = []
    for s in c.steps:
        parts.append(s.text.strip())
        if s.code is not None:
            parts.append(("Printed:\n" if s.ok else "Failed:\n") + (s.output or "(nothing)"))
    if c.steps[-1].code is not None and c.steps[-1].ok:
        parts.append(f"Final answer: {c.text}")
    return "\n\n".join(parts)


class Actor:
    """Answers requests, with the tool loop when `cfg` is set."""

    def __init__(self, llm: LLM, cfg: ActSpec | None) -> None:
        self.llm, self.cfg = llm, cfg

    def with_tool(self, request: Request, preload: Preload) -> Request:
        """The request with the tool's instructions appended to its last user message."""
        assert self.cfg is not None
        note = load_prompt("act_python").text(
            "user",
            timeout_s=f"{self.cfg.timeout_s:g}",
            finish=self.cfg.finish,
            preloaded=", ".join(preload.names),
        )
        msgs = list(request.messages)
        last = max((i for i, m in enumerate(msgs) if m.role == "user"), default=None)
        if last is None:
            msgs.append(Message.user(note))
        else:
            msgs[last] = Message.user(f"{msgs[last].content}\n\n{note}")
        return request.model_copy(update={"messages": tuple(msgs)})

    async def answer(
        self,
        request: Request,
        *,
        n: int = 1,
        phase: str = "default",
        salt: str = "",
        preload: Preload | None = None,
    ) -> list[Completion]:
        if self.cfg is None:
            return await self.llm.complete(request, n=n, phase=phase, salt=salt)
        preload = preload or Preload()
        request = self.with_tool(request, preload)
        if request.max_tokens > self.cfg.max_tokens:
            request = request.model_copy(update={"max_tokens": self.cfg.max_tokens})
        first = await self.llm.complete(request, n=n, phase=phase, salt=salt)
        return list(
            await asyncio.gather(
                *(
                    self._finish(request, c, preload, phase=phase, salt=f"{salt}:{i}")
                    for i, c in enumerate(first)
                )
            )
        )

    async def _finish(
        self, request: Request, c: Completion, preload: Preload, *, phase: str, salt: str
    ) -> Completion:
        cfg = self.cfg
        assert cfg is not None
        msgs = list(request.messages)
        steps: list[ToolStep] = []
        usage = Usage() + c.usage
        final, from_output = c.text, False
        for turn in range(1, cfg.max_turns + 1):
            blocks = code_blocks(c.text)
            if not blocks:
                steps.append(ToolStep(text=c.text))
                final = c.text
                break
            code = blocks[-1]
            program = f"{preload.code}\n\n{code}" if preload.code else code
            res = await arun_python(program, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb)
            printed = res.stdout.strip()
            ok = res.ok and bool(printed)
            if ok:
                shown = _tail(printed, SHOWN_CHARS)
            elif res.ok:
                shown = "(it printed nothing: print the answer)"
            else:
                shown = _tail(res.stderr, SHOWN_CHARS) or res.summary()
            steps.append(ToolStep(text=c.text, code=code, output=shown, ok=ok))
            final, from_output = (_tail(printed, ANSWER_CHARS), True) if ok else (c.text, False)
            if ok and cfg.finish == "output":
                break
            left = cfg.max_tokens - usage.completion_tokens
            if turn == cfg.max_turns or left < 16:
                break
            feedback = load_prompt("act_feedback").text("user", ok=ok, output=shown, finish=cfg.finish)
            msgs += [Message.assistant(c.text), Message.user(feedback)]
            nxt = request.model_copy(
                update={"messages": tuple(msgs), "max_tokens": min(request.max_tokens, left)}
            )
            c = (await self.llm.complete(nxt, n=1, phase=phase, salt=f"{salt}:t{turn}"))[0]
            usage = usage + c.usage
        return Completion(
            text=final, finish_reason="stop" if from_output else c.finish_reason,
            logprobs=None, usage=usage, model=c.model, cached=c.cached, steps=steps,
        )  # fmt: skip
