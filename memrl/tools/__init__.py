"""Tools for the Memento executor: typed Python functions, built-ins (calculator, sandboxed Python), MCP tools.

    from memrl.tools import tool, ToolBox

    @tool
    def lookup(city: str, year: int = 2024) -> str:
        "Population of a city."
        ...

MCP servers over stdio (the `mcp` extra): `memrl.tools.mcp.mcp_stdio_tools`.
"""

from memrl.tools.base import FunctionTool, Tool, ToolResult, tool
from memrl.tools.box import FINISH, ToolBox, ToolCall
from memrl.tools.builtin import BUILTIN_TOOLS, builtin_tools, calculate, calculator_tool, python_tool

__all__ = [
    "BUILTIN_TOOLS",
    "FINISH",
    "FunctionTool",
    "Tool",
    "ToolBox",
    "ToolCall",
    "ToolResult",
    "builtin_tools",
    "calculate",
    "calculator_tool",
    "python_tool",
    "tool",
]
