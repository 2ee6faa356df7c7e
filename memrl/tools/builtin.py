"""Built-in tools: a safe calculator (arithmetic over a parsed expression, never `eval`) and sandboxed Python
(`memrl.tasks.sandbox`: separate process, time, memory and network limits)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memrl.errors import ConfigError
from memrl.tasks.sandbox import arun_python
from memrl.tools.base import FunctionTool, Tool

if TYPE_CHECKING:
    from memrl.act import Preload

__all__ = ["calculate", "calculator_tool", "python_tool", "builtin_tools", "BUILTIN_TOOLS"]

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log,
    "log10": math.log10, "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "floor": math.floor, "ceil": math.ceil, "factorial": math.factorial, "gcd": math.gcd,
}  # fmt: skip
_CONSTS = {"pi": math.pi, "e": math.e}
_MAX_EXPONENT = 10_000
_MAX_DIGITS = 4_000


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTS:
        return _CONSTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ValueError("'^' is not a power here: write ** for powers")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
        if node.keywords:
            raise ValueError("functions take positional arguments only")
        return _FUNCS[node.func.id](*(_eval(a) for a in node.args))
    if isinstance(node, ast.Call):
        fname = node.func.id if isinstance(node.func, ast.Name) else "?"
        raise ValueError(f"unknown function {fname!r}; functions: {', '.join(_FUNCS)}")
    what = type(node).__name__ if not isinstance(node, ast.Name) else f"name {node.id!r}"
    raise ValueError(f"unsupported in a calculator expression: {what}")


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, sqrt, log, sin, ..., pi, e."""
    text = expression.strip().replace("×", "*").replace("÷", "/").replace(",", "")
    if not text:
        raise ValueError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an arithmetic expression: {e.msg}") from None
    value = _eval(tree)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    out = str(value)
    if len(out) > _MAX_DIGITS:
        raise ValueError(f"result has {len(out)} digits, more than {_MAX_DIGITS}")
    return out


def calculator_tool() -> Tool:
    return FunctionTool(
        calculate,
        name="calculator",
        description="Evaluate an arithmetic expression, e.g. (12 + 30) * 4 / 7 or sqrt(2) ** 3.",
        timeout_s=5.0,
    )


def python_tool(timeout_s: float = 10.0, memory_mb: int = 256, preload: Preload | None = None) -> Tool:
    """Sandboxed Python; with `preload` (verified skills) its code is defined before every program and its
    names are given in the tool's description."""
    pre = preload.code if preload is not None else ""

    async def python(code: str) -> str:
        """Run a Python program in a sandbox and return what it prints."""
        res = await arun_python(f"{pre}\n\n{code}" if pre else code, timeout_s=timeout_s, memory_mb=memory_mb)
        if not res.ok:
            tail = " ".join(res.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"{res.summary(120)}{' | ' + tail if tail else ''}")
        return res.stdout.strip() or "(the program printed nothing: print() the result)"

    described = "Run a short Python program (no network, no files kept) and return what it prints."
    if preload is not None and preload.names:
        names = ", ".join(preload.names)
        described += f" Already defined there (verified on similar problems; call, do not rewrite): {names}."
    return FunctionTool(python, name="python", description=described, timeout_s=timeout_s + 5.0)


#: name -> factory of the built-in tools a task file can list under `memento.tools`.
BUILTIN_TOOLS: dict[str, Callable[[], Tool]] = {"calculator": calculator_tool, "python": python_tool}


def builtin_tools(names: list[str]) -> list[Tool]:
    unknown = [n for n in names if n not in BUILTIN_TOOLS]
    if unknown:
        raise ConfigError(f"unknown tool(s) {unknown}; built-in tools: {', '.join(BUILTIN_TOOLS)}")
    return [BUILTIN_TOOLS[n]() for n in names]
