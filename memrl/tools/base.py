"""Tools the Memento executor calls: a small `Tool` Protocol, and `FunctionTool`, which turns a typed Python
function into a tool whose arguments are validated by a pydantic model built from its signature.

A tool never raises into the agent: bad arguments, exceptions and timeouts come back as a `ToolResult` with
`ok=False` and an `error` the executor reads on its next step.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

__all__ = ["Tool", "ToolResult", "FunctionTool", "tool", "clean_schema", "short"]


class ToolResult(BaseModel):
    """What one tool call returned."""

    ok: bool
    output: str = ""
    error: str | None = None
    done: bool = False  # the environment ended (a game won or lost)
    latency_s: float = 0.0

    def text(self, limit: int = 400) -> str:
        """The result as the executor sees it."""
        return short(self.output if self.ok else f"ERROR: {self.error}", limit)


@runtime_checkable
class Tool(Protocol):
    """A named, described callable with a JSON schema for its arguments."""

    name: str
    description: str

    def args_schema(self) -> dict[str, Any]: ...

    async def call(self, args: dict[str, Any]) -> ToolResult: ...


def short(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema without titles (shorter grammars for constrained decoding, same meaning)."""
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]  # type: ignore[return-value]
    return schema


def _args_model(fn: Callable[..., Any], name: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    hints = inspect.get_annotations(fn, eval_str=True)
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args and **kwargs cannot be described to a model")
        if p.name not in hints:
            raise TypeError(f"tool {name!r}: argument {p.name!r} needs a type annotation")
        fields[p.name] = (hints[p.name], ... if p.default is p.empty else p.default)
    return create_model(f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields)


class FunctionTool:
    """A typed Python function (sync or async) as a tool. Sync functions run in a worker thread."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        doc = inspect.getdoc(fn) or ""
        self.description = description or (doc.splitlines()[0] if doc else self.name)
        self.timeout_s = timeout_s
        self.args_model = _args_model(fn, self.name)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    def args_schema(self) -> dict[str, Any]:
        return clean_schema(self.args_model.model_json_schema())

    async def call(self, args: dict[str, Any]) -> ToolResult:
        t0 = time.perf_counter()
        try:
            parsed = self.args_model.model_validate(args)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            return ToolResult(ok=False, error=f"invalid arguments: {where}: {first['msg']}")
        kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
        try:
            if inspect.iscoroutinefunction(self.fn):
                out = await asyncio.wait_for(self.fn(**kwargs), self.timeout_s)
            else:  # a thread cannot be killed: a timed-out call is abandoned, not stopped
                out = await asyncio.wait_for(asyncio.to_thread(self.fn, **kwargs), self.timeout_s)
        except asyncio.TimeoutError:
            return ToolResult(
                ok=False, error=f"timed out after {self.timeout_s:g}s", latency_s=self.timeout_s
            )
        except Exception as e:  # a tool's failure is the executor's information, not a crash
            return ToolResult(ok=False, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - t0)
        text = out if isinstance(out, str) else json.dumps(out, default=str)
        return ToolResult(ok=True, output=text, latency_s=time.perf_counter() - t0)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 30.0,
) -> Any:
    """Decorator: `@tool` or `@tool(name=..., description=...)` makes a `FunctionTool`."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description, timeout_s=timeout_s)

    return wrap(fn) if fn is not None else wrap
