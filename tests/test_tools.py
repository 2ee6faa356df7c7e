"""Tools: typed Python functions, the built-ins, the action schema, and errors that come back as results."""

from __future__ import annotations

import asyncio
import sys

import jsonschema
import pytest
from pydantic import BaseModel

from memrl.errors import ConfigError
from memrl.tools import FINISH, FunctionTool, ToolBox, ToolCall, ToolResult, builtin_tools, calculate, tool


class Point(BaseModel):
    x: int
    y: int


@tool
def distance(a: Point, b: Point, scale: float = 1.0) -> float:
    """Manhattan distance between two points."""
    return scale * (abs(a.x - b.x) + abs(a.y - b.y))


def run(coro):
    return asyncio.run(coro)


def test_function_tool_schema_and_call():
    assert distance.name == "distance" and distance.description == "Manhattan distance between two points."
    schema = distance.args_schema()
    assert schema["required"] == ["a", "b"] and "scale" in schema["properties"]
    assert "title" not in str(schema)
    res = run(distance.call({"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": -4}}))
    assert res.ok and res.output == "7.0"


def test_bad_arguments_exceptions_and_timeouts_are_results():
    bad = run(distance.call({"a": {"x": "zero", "y": 0}, "b": {"x": 1, "y": 1}}))
    assert not bad.ok and bad.error.startswith("invalid arguments: a.x")
    extra = run(distance.call({"a": {"x": 0, "y": 0}, "b": {"x": 1, "y": 1}, "c": 3}))
    assert not extra.ok and "c" in extra.error

    def explode(n: int) -> str:
        raise KeyError(n)

    res = run(FunctionTool(explode).call({"n": 3}))
    assert not res.ok and res.error == "KeyError: 3"

    async def slow(s: float) -> str:
        await asyncio.sleep(s)
        return "late"

    res = run(FunctionTool(slow, timeout_s=0.05).call({"s": 5}))
    assert not res.ok and "timed out" in res.error


def test_tool_needs_annotations():
    def untyped(x):  # noqa: ANN001
        return x

    with pytest.raises(TypeError, match="type annotation"):
        FunctionTool(untyped)


def test_calculator():
    assert calculate("(12 + 30) * 4 / 7") == "24"
    assert calculate("1,234 + 1") == "1235"
    assert calculate("sqrt(16) + 2**3") == "12"
    for bad, msg in [("__import__('os')", "unknown function"), ("2 ^ 3", r"write \*\*"), ("9 ** 99999", "too large"),
                     ("x + 1", "name 'x'"), ("", "empty"), ("1 +", "not an arithmetic")]:  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            calculate(bad)


def test_builtins_through_the_toolbox():
    box = ToolBox(builtin_tools(["calculator", "python"]))
    assert box.names() == ["calculator", "python"]
    assert run(box.run(ToolCall(tool="calculator", args={"expression": "6*7"}))).output == "42"
    zero = run(box.run(ToolCall(tool="calculator", args={"expression": "1/0"})))
    assert not zero.ok and "ZeroDivisionError" in zero.error
    printed = run(box.run(ToolCall(tool="python", args={"code": "print(sum(range(10)))"})))
    assert printed.ok and printed.output == "45"
    crash = run(box.run(ToolCall(tool="python", args={"code": "raise ValueError('nope')"})))
    assert not crash.ok and "ValueError: nope" in crash.error
    missing = run(box.run(ToolCall(tool="search", args={})))
    assert not missing.ok and "no tool named 'search'" in missing.error
    with pytest.raises(ConfigError, match="built-in tools: calculator, python"):
        builtin_tools(["calc"])


def test_python_tool_time_limit():
    from memrl.tools import python_tool

    res = run(python_tool(timeout_s=0.5).call({"code": "while True: pass"}))
    assert not res.ok and "timed out" in res.error


def test_a_tool_that_raises_does_not_escape_the_box():
    class Broken:
        name, description = "broken", "raises instead of returning a result"

        def args_schema(self):
            return {"type": "object", "properties": {}}

        async def call(self, args):
            raise RuntimeError("socket closed")

    res = run(ToolBox([Broken()]).run(ToolCall(tool="broken")))
    assert isinstance(res, ToolResult) and not res.ok and res.error == "RuntimeError: socket closed"


def test_action_schema_admits_exactly_the_tools():
    box = ToolBox([distance, *builtin_tools(["calculator"])])
    schema = box.action_schema()
    jsonschema.validate({"tool": "calculator", "args": {"expression": "1+1"}}, schema)
    jsonschema.validate({"tool": FINISH, "args": {"result": "done: 2"}}, schema)
    for wrong in [{"tool": "python", "args": {"code": "1"}}, {"tool": "calculator", "args": {"expr": "1"}},
                  {"tool": FINISH, "args": {"result": "..."}}]:  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, schema)
    no_finish = box.action_schema(allow_finish=False)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool": FINISH, "args": {"result": "x"}}, no_finish)


def test_toolbox_names():
    with pytest.raises(ValueError, match="reserved"):
        ToolBox([_named("finish")])
    with pytest.raises(ValueError, match="two tools"):
        ToolBox([_named("a"), _named("a")])


def _named(name: str) -> FunctionTool:
    def f(x: int) -> int:
        return x

    return FunctionTool(f, name=name)


# ---------------------------------------------------------------------------------------------- MCP over stdio

MCP_SERVER = r"""
import json, sys
TOOLS = [{"name": "add", "description": "Add two integers.",
          "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                          "required": ["a", "b"]}},
         {"name": "fail", "description": "Always fails.", "inputSchema": {"type": "object", "properties": {}}}]
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    if "id" not in req:
        continue
    m, i, p = req["method"], req["id"], req.get("params") or {}
    if m == "initialize":
        send({"jsonrpc": "2.0", "id": i, "result": {"protocolVersion": p.get("protocolVersion"),
              "capabilities": {"tools": {}}, "serverInfo": {"name": "test", "version": "0"}}})
    elif m == "tools/list":
        send({"jsonrpc": "2.0", "id": i, "result": {"tools": TOOLS}})
    elif m == "tools/call" and p["name"] == "add":
        a = p.get("arguments") or {}
        send({"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": str(a["a"] + a["b"])}]}})
    elif m == "tools/call" and p["name"] == "fail":
        send({"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": "disk full"}], "isError": True}})
    elif m == "tools/call":
        send({"jsonrpc": "2.0", "id": i, "error": {"code": -32602, "message": "unknown tool " + p["name"]}})
    else:
        send({"jsonrpc": "2.0", "id": i, "result": {}})
"""


def test_mcp_stdio_tools(tmp_path):
    pytest.importorskip("mcp")
    from memrl.tools.mcp import mcp_stdio_tools

    script = tmp_path / "server.py"
    script.write_text(MCP_SERVER)

    async def go():
        async with mcp_stdio_tools(sys.executable, [str(script)], prefix="t_") as tools:
            box = ToolBox(tools)
            assert box.names() == ["t_add", "t_fail"]
            assert tools[0].args_schema()["required"] == ["a", "b"]
            ok = await box.run(ToolCall(tool="t_add", args={"a": 2, "b": 40}))
            failed = await box.run(ToolCall(tool="t_fail"))
            tools[0].remote_name = "gone"  # the server answers with a JSON-RPC error
            err = await box.run(ToolCall(tool="t_add", args={"a": 1, "b": 1}))
            return ok, failed, err

    ok, failed, err = run(go())
    assert ok.ok and ok.output == "42"
    assert not failed.ok and failed.error == "disk full"
    assert not err.ok and "unknown tool gone" in err.error


def test_mcp_missing_names_the_extra(monkeypatch):
    from memrl.tools.mcp import mcp_stdio_tools

    monkeypatch.setitem(sys.modules, "mcp", None)

    async def go():
        async with mcp_stdio_tools("true"):
            pass

    with pytest.raises(ConfigError, match=r"memrl\[mcp\]"):
        run(go())
