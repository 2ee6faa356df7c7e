"""What a program offers as a skill, read from its syntax tree, and which preloaded functions another program
calls.

A program that solved a training item usually reads: data (a literal grid, a list of numbers), functions,
then top-level code that calls them and prints the answer in the form the question asks for. The skill is
the whole procedure with its data lifted into parameters: `print_answer(grid)` runs the program's own
top-level code on another item's data, output format included (a solver cut out alone returns `True` or a
raw grid, and a small model calling it prints that). Where there is no literal data to lift, the skill is
the functions the top level called, with their helpers and imports, without the data."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ENTRY", "SkillSource", "skill_source", "calls"]

#: The name of a lifted program's function (its data are the parameters; it prints the answer).
ENTRY = "print_answer"
#: The longest origin call kept as a skill's example (a call with more data than this reads as noise).
EXAMPLE_CHARS = 600


@dataclass(frozen=True)
class SkillSource:
    """Reusable code cut from one program: its imports and top-level functions, without the data."""

    code: str
    names: tuple[str, ...]  # every function it defines
    entry: str  # the function the program's top level called (the others are its helpers)
    signature: str
    doc: str
    # a lifted program's own call, its data written out: `print_answer(grid=[[1, None], ...])`
    example: str = ""


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _called(nodes: list[ast.stmt]) -> set[str]:
    return {
        n.func.id
        for node in nodes
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or node.orelse:
        return False
    t = node.test
    return isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"


def _literal(node: ast.AST | None) -> bool:
    if node is None:
        return False
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _data_name(node: ast.stmt) -> str | None:
    """The name a statement binds to a literal (`grid = [[1, None], ...]`), else None."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id if _literal(node.value) else None
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id if _literal(node.value) else None
    return None


def _free_loads(fn: ast.FunctionDef) -> set[str]:
    """Names a function reads that it neither binds nor takes (globals it depends on), roughly."""
    bound = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
    loads: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name):
            (bound.add if isinstance(n.ctx, ast.Store | ast.Del) else loads.add)(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n is not fn:
            bound.add(n.name)
    return loads - bound


def _split(tree: ast.Module) -> tuple[list[ast.FunctionDef], Sequence[ast.stmt], list[ast.stmt]]:
    """The program's functions, imports and other top-level statements (`if __name__ == "__main__":`
    blocks count as top-level code)."""
    body: list[ast.stmt] = []
    for node in tree.body:
        body.extend(node.body if isinstance(node, ast.If) and _is_main_guard(node) else [node])
    defs = [n for n in body if isinstance(n, ast.FunctionDef)]
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [n for n in body if not isinstance(n, ast.FunctionDef | ast.Import | ast.ImportFrom)]
    return defs, imports, rest


def _reached(defs: list[ast.FunctionDef], roots: list[ast.stmt]) -> list[ast.FunctionDef]:
    """The functions `roots` call, directly or through each other, in the program's order."""
    by_name = {d.name: d for d in defs}
    keep: set[str] = set()
    todo = list(roots)
    while todo:
        for name in _called([todo.pop()]) & by_name.keys() - keep:
            keep.add(name)
            todo.append(by_name[name])
    return [d for d in defs if d.name in keep]


def _source(imports: Sequence[ast.stmt], kept: Sequence[ast.stmt]) -> str:
    return "\n\n".join(ast.unparse(n) for n in [*imports, *kept]).strip() + "\n"


def _lift(
    defs: list[ast.FunctionDef], imports: Sequence[ast.stmt], rest: list[ast.stmt]
) -> SkillSource | None:
    """The whole program as `print_answer(<its data>)`, or None when it has no literal data, no top-level
    call, or a function that reads the data (or other top-level values) as globals."""
    data = [_data_name(n) for n in rest]
    params = list(dict.fromkeys(d for d in data if d is not None))
    steps = [n for n, d in zip(rest, data, strict=True) if d is None]
    if not params or not _called(steps) or ENTRY in {d.name for d in defs}:
        return None
    top_names = {
        t.id for n in rest for t in ast.walk(n) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)
    }
    if any(_free_loads(d) & top_names for d in defs):
        return None  # a function reading the data as a global would break once the data are parameters
    kept = _reached(defs, steps)
    doc = f"Prints the answer for {', '.join(params)}: a program that solved a training problem, its data as parameters."
    fn = ast.parse(f"def {ENTRY}({', '.join(params)}):\n    {doc!r}\n").body[0]
    assert isinstance(fn, ast.FunctionDef)
    fn.body = [fn.body[0], *steps]
    return SkillSource(
        code=_source(imports, [*kept, fn]),
        names=(*(d.name for d in kept), ENTRY),
        entry=ENTRY,
        signature=f"{ENTRY}({', '.join(params)})",
        doc=doc,
        example=_example(rest, params),
    )


def _example(rest: list[ast.stmt], params: list[str]) -> str:
    """The call that reproduces the origin program, `print_answer(grid=[[1, None], ...])`: how the data of a
    question are written as arguments ('' when longer than EXAMPLE_CHARS)."""
    values: dict[str, str] = {}
    for n in rest:
        name = _data_name(n)
        if name is not None and name not in values:
            assert isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None
            values[name] = ast.unparse(n.value)
    call = f"{ENTRY}({', '.join(f'{p}={values[p]}' for p in params)})"
    return call if len(call) <= EXAMPLE_CHARS else ""


def skill_source(code: str) -> SkillSource | None:
    """What `code` offers as a skill: the program lifted into `print_answer(<data>)` where it has literal
    data, else the functions its top level calls; None for neither (straight-line code on inline data)."""
    tree = _parse(code)
    if tree is None:
        return None
    defs, imports, rest = _split(tree)
    lifted = _lift(defs, imports, rest)
    if lifted is not None:
        return lifted
    called_top = _called(rest)
    entries = [d for d in defs if d.name in called_top]
    if not entries:
        return None
    by_helpers = _called(list(defs))
    # the entry: called from the top level and by no other function (the outermost), else the last called
    outer = [d for d in entries if d.name not in by_helpers] or entries
    entry = outer[-1]
    kept = [entry, *(d for d in _reached(defs, [entry]) if d is not entry)]
    kept.sort(key=defs.index)
    return SkillSource(
        code=_source(imports, kept),
        names=tuple(d.name for d in kept),
        entry=entry.name,
        signature=f"{entry.name}({ast.unparse(entry.args)})",
        doc=(ast.get_docstring(entry) or "").strip().split("\n")[0][:200],
    )


def calls(code: str, names: tuple[str, ...] | list[str]) -> set[str]:
    """Which of `names` the program calls without defining them itself (so the preloaded ones ran)."""
    tree = _parse(code)
    if tree is None:
        return set()
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return (_called(list(tree.body)) & set(names)) - defined
