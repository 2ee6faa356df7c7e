"""Tools served by an MCP server over stdio (the `mcp` extra: `pip install 'memrl[mcp]'`).

    async with mcp_stdio_tools("python", ["server.py"]) as tools:
        box = ToolBox(tools)

The server process lives as long as the `async with`. Each of its tools becomes a `Tool` whose argument
schema is the server's `inputSchema`; a result flagged as an error, a protocol error or a timeout comes back
as a `ToolResult` with `ok=False`. Works with the `mcp` client API of 1.x and 2.x.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from memrl.errors import ConfigError
from memrl.tools.base import ToolResult

__all__ = ["MCPTool", "mcp_stdio_tools"]

_INSTALL = "MCP tools need the mcp package: pip install 'memrl[mcp]'"


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    """Read a field under its 2.x (snake_case) or 1.x (camelCase) name."""
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


def _content_text(content: Any) -> str:
    parts = []
    for block in content or []:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')}]")
    return "\n".join(parts)


class MCPTool:
    """One tool of a connected MCP session."""

    def __init__(self, session: Any, name: str, description: str, schema: dict[str, Any], *,
                 prefix: str = "", timeout_s: float = 30.0) -> None:  # fmt: skip
        self._session, self.remote_name = session, name
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}{name}")
        self.description = description or name
        self._schema = schema or {"type": "object", "properties": {}}
        self.timeout_s = timeout_s

    def args_schema(self) -> dict[str, Any]:
        return self._schema

    async def call(self, args: dict[str, Any]) -> ToolResult:
        t0 = time.perf_counter()
        try:
            res = await asyncio.wait_for(self._session.call_tool(self.remote_name, args), self.timeout_s)
        except asyncio.TimeoutError:
            return ToolResult(
                ok=False, error=f"timed out after {self.timeout_s:g}s", latency_s=self.timeout_s
            )
        except (
            Exception
        ) as e:  # protocol errors (unknown tool, invalid params) are the executor's information
            return ToolResult(ok=False, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - t0)
        text = _content_text(_field(res, "content", default=[]))
        if _field(res, "is_error", "isError", default=False):
            return ToolResult(
                ok=False, error=text or "the tool reported an error", latency_s=time.perf_counter() - t0
            )
        return ToolResult(ok=True, output=text, latency_s=time.perf_counter() - t0)


@contextlib.asynccontextmanager
async def mcp_stdio_tools(
    command: str,
    args: list[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    prefix: str = "",
    timeout_s: float = 30.0,
) -> AsyncIterator[list[MCPTool]]:
    """Start an MCP server over stdio, list its tools, and yield them; the server stops on exit."""
    try:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
    except ImportError:
        raise ConfigError(_INSTALL) from None
    params = StdioServerParameters(command=command, args=list(args or []), env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await asyncio.wait_for(session.initialize(), timeout_s)
        listed = await asyncio.wait_for(session.list_tools(), timeout_s)
        yield [
            MCPTool(
                session,
                t.name,
                t.description or "",
                _field(t, "input_schema", "inputSchema", default={}),
                prefix=prefix,
                timeout_s=timeout_s,
            )
            for t in listed.tools
        ]
