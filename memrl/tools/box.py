"""ToolBox: the tools of one executor step, the JSON schema of a valid action over them, and safe dispatch.

An action is `{"tool": NAME, "args": {...}}`. The schema is an `anyOf` with one branch per tool (its name as a
`const`, its own argument schema), plus `finish` with a short `result`, so a provider that enforces schemas
(llama.cpp) can only produce a call to a tool that exists with arguments of the right shape.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from memrl.tools.base import Tool, ToolResult

__all__ = ["ToolBox", "ToolCall", "FINISH"]

#: The pseudo-tool that ends a subtask with its result.
FINISH = "finish"


class ToolCall(BaseModel):
    """One action of the executor."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_finish(self) -> bool:
        return self.tool == FINISH

    def summary(self, limit: int = 160) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        text = f"{self.tool}({inner})"
        return text if len(text) <= limit else text[: limit - 1] + "…"


class ToolBox:
    """Tools by name. Names are unique; `finish` is reserved."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self.tools: dict[str, Tool] = {}
        for t in tools:
            if t.name == FINISH:
                raise ValueError(f"{FINISH!r} is reserved for ending a subtask; rename the tool")
            if t.name in self.tools:
                raise ValueError(f"two tools are named {t.name!r}")
            self.tools[t.name] = t

    def __len__(self) -> int:
        return len(self.tools)

    def names(self) -> list[str]:
        return list(self.tools)

    def describe(self) -> list[dict[str, str]]:
        return [{"name": t.name, "description": t.description} for t in self.tools.values()]

    def action_schema(self, *, allow_finish: bool = True, result_chars: int = 80) -> dict[str, Any]:
        branches = [
            {
                "type": "object",
                "properties": {"tool": {"const": t.name}, "args": t.args_schema()},
                "required": ["tool", "args"],
            }
            for t in self.tools.values()
        ]
        if allow_finish or not branches:
            finish_args = {
                "type": "object",
                "properties": {
                    "result": {"type": "string", "pattern": f"^[A-Za-z0-9][^\\n]{{0,{result_chars - 1}}}$"}
                },
                "required": ["result"],
            }
            branches.append(
                {
                    "type": "object",
                    "properties": {"tool": {"const": FINISH}, "args": finish_args},
                    "required": ["tool", "args"],
                }
            )
        return branches[0] if len(branches) == 1 else {"anyOf": branches}

    async def run(self, call: ToolCall) -> ToolResult:
        """Run one call. Unknown tools, bad arguments, exceptions and timeouts all become error results."""
        t0 = time.perf_counter()
        tool = self.tools.get(call.tool)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            return ToolResult(ok=False, error=f"no tool named {call.tool!r}; tools: {known}")
        try:
            res = await tool.call(call.args)
        except Exception as e:  # a misbehaving third-party tool still must not end the episode
            res = ToolResult(ok=False, error=f"{type(e).__name__}: {e}")
        if not res.latency_s:
            res = res.model_copy(update={"latency_s": time.perf_counter() - t0})
        return res
