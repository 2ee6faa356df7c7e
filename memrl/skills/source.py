"""What a program offers as a skill, read from its syntax tree: the functions it defines and calls from its
top level (with the imports they need), and which preloaded functions another program calls."""

from __future__ import annotations

import ast
from dataclasses import dataclass

__all__ = ["SkillSource", "skill_source", "calls"]


@dataclass(frozen=True)
class SkillSource:
    """Reusable code cut from one program: its imports and top-level functions, without the data."""

    code: str
    names: tuple[str, ...]  # every function it defines
    entry: str  # the function the program's top level called (the others are its helpers)
    signature: str
    doc: str


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


def skill_source(code: str) -> SkillSource | None:
    """The functions of `code` worth keeping, or None when it defines none that its top level calls (a
    straight-line program is tied to its own data)."""
    tree = _parse(code)
    if tree is None:
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.Import | ast.ImportFrom)]
    called_top = _called(rest)
    names = {d.name for d in defs}
    entries = [d for d in defs if d.name in called_top]
    if not entries:
        return None
    by_helpers = _called(list(defs))
    # the entry: called from the top level and by no other function (the outermost), else the last called
    outer = [d for d in entries if d.name not in by_helpers] or entries
    entry = outer[-1]
    # keep only the functions the entry reaches
    keep, todo = {entry.name}, [entry]
    by_name = {d.name: d for d in defs}
    while todo:
        for name in _called([todo.pop()]) & names:
            if name not in keep:
                keep.add(name)
                todo.append(by_name[name])
    kept = [d for d in defs if d.name in keep]
    parts = [ast.unparse(n) for n in imports] + [ast.unparse(d) for d in kept]
    args = ast.unparse(entry.args)
    return SkillSource(
        code="\n\n".join(parts).strip() + "\n",
        names=tuple(d.name for d in kept),
        entry=entry.name,
        signature=f"{entry.name}({args})",
        doc=(ast.get_docstring(entry) or "").strip().split("\n")[0][:200],
    )


def calls(code: str, names: tuple[str, ...] | list[str]) -> set[str]:
    """Which of `names` the program calls without defining them itself (so the preloaded ones ran)."""
    tree = _parse(code)
    if tree is None:
        return set()
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return (_called(list(tree.body)) & set(names)) - defined
