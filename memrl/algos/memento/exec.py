"""Memento's executor: one subtask at a time, one tool call per step, under the episode's budget.

Each step the model sees the task, the plan, earlier subtasks' results, hints from subtask and tool memory,
the current observation and this subtask's steps so far, and answers `{"tool": NAME, "args": {...}}` under a
JSON schema that admits only the tools available now (and `finish`). The tool's output, or its error, is the
next step's information; nothing a tool does ends the episode except the environment saying it is over.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from memrl.algos.memento.env import Episode
from memrl.algos.memento.plan import Subtask
from memrl.llm.base import LLM, Request
from memrl.prompts import load_prompt
from memrl.spec import MementoSpec
from memrl.structured import ask_structured
from memrl.tools.box import ToolBox, ToolCall
from memrl.types import Completion

__all__ = ["EpisodeBudget", "EpisodeStop", "BudgetedLLM", "StepRecord", "SubtaskRun", "execute_subtask"]


class EpisodeStop(Exception):
    """The episode ran out of steps, tokens or time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EpisodeBudget:
    """Steps (tool calls), model tokens and wall-clock seconds of one episode."""

    def __init__(self, max_steps: int, max_tokens: int, max_seconds: float) -> None:
        self.max_steps, self.max_tokens, self.max_seconds = max_steps, max_tokens, max_seconds
        self.steps = self.tokens = 0
        self.t0 = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.t0

    def check(self) -> None:
        if self.tokens >= self.max_tokens:
            raise EpisodeStop("tokens")
        if self.seconds >= self.max_seconds:
            raise EpisodeStop("seconds")

    def take_step(self) -> None:
        if self.steps >= self.max_steps:
            raise EpisodeStop("steps")
        self.steps += 1


class BudgetedLLM:
    """An `LLM` that charges every completion (cached ones too, so a replay stops where the run did)."""

    def __init__(self, llm: LLM, budget: EpisodeBudget) -> None:
        self.llm, self.budget, self.name = llm, budget, llm.name

    async def complete(
        self, request: Request, *, n: int = 1, phase: str = "default", salt: str = ""
    ) -> list[Completion]:
        self.budget.check()
        out = await self.llm.complete(request, n=n, phase=phase, salt=salt)
        self.budget.tokens += sum(c.usage.total_tokens for c in out)
        return out


class StepRecord(BaseModel):
    subtask_id: str
    call: ToolCall
    ok: bool
    output: str = ""
    error: str | None = None
    latency_s: float = 0.0
    gain: float = 0.0

    def line(self, limit: int = 160) -> str:
        shown = self.output if self.ok else f"ERROR {self.error}"
        gain = f" [reward +{self.gain:g}]" if self.gain > 0 else ""
        text = f"{self.call.summary(80)}{gain} -> {' '.join(shown.split())}"
        return text if len(text) <= limit else text[: limit - 1] + "…"


class SubtaskRun(BaseModel):
    subtask: Subtask
    cycle: int
    steps: list[StepRecord] = Field(default_factory=list)
    result: str = ""
    finished: bool = False
    gain: float = 0.0
    success: bool = False


async def execute_subtask(
    llm: LLM,
    episode: Episode,
    subtask: Subtask,
    *,
    cycle: int,
    context: dict[str, Any],
    hints: list[str],
    cfg: MementoSpec,
    budget: EpisodeBudget,
    salt: str,
) -> SubtaskRun:
    """Run one subtask until `finish`, its step limit, or the end of the episode."""
    run = SubtaskRun(subtask=subtask, cycle=cycle)
    start = episode.progress()
    prompt = load_prompt("memento_execute")
    history: list[str] = []
    for i in range(cfg.max_subtask_steps):
        if episode.done:
            break
        box = ToolBox(episode.tools())
        # in a game a subtask acts at least once before finishing; questions may finish at once
        allow_finish = len(box) == 0 or i >= max(cfg.min_subtask_steps, 0 if episode.needs_answer else 1)
        msgs = prompt.messages(**context, subtask=subtask.goal, current=subtask.id, hints=hints,
                               observation=episode.observation(), history=history, tools=box.describe())  # fmt: skip
        call = await ask_structured(
            llm, msgs, ToolCall, schema=box.action_schema(allow_finish=allow_finish), phase="execute",
            salt=f"{salt}:{subtask.id}:step{i}", temperature=cfg.temperature, max_tokens=cfg.action_max_tokens,
        )  # fmt: skip
        if call is None:
            history.append("(no valid action)")
            continue
        if call.is_finish:
            run.finished, run.result = True, str(call.args.get("result", ""))[:300]
            break
        budget.take_step()
        before = episode.progress()
        res = await box.run(call)
        step = StepRecord(subtask_id=subtask.id, call=call, ok=res.ok, output=res.output[:600],
                          error=res.error, latency_s=res.latency_s, gain=episode.progress() - before)  # fmt: skip
        run.steps.append(step)
        history.append(step.line())
        if res.done:
            break
    run.gain = episode.progress() - start
    if not run.result and run.steps:
        last = run.steps[-1]
        run.result = (last.output if last.ok else f"failed: {last.error}")[:300]
    last_ok = not run.steps or run.steps[-1].ok
    run.success = run.gain > 0 or (run.finished and last_ok)
    return run
