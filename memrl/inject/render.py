"""How memory reads in a prompt: the memory block (lessons, then worked cases) and the two ways a case is
written out (a Memento case as task + first steps + result; a solved training item as problem + solution).
The same renderers serve learning and deployment, so a deployed prompt reads as the learned one did."""

from __future__ import annotations

from memrl.memory.records import CaseRecord
from memrl.prompts import load_prompt

__all__ = ["memory_block", "render_case", "render_solved"]


def memory_block(lessons: list[str], cases: list[str] | None = None) -> str:
    """Render lessons (and worked cases) as one block of text, or '' when there is nothing to inject."""
    if not lessons and not cases:
        return ""
    return load_prompt("memory_block").text("user", lessons=lessons, cases=cases or [])


def render_case(case: CaseRecord, max_steps: int = 6, max_chars: int = 240) -> str:
    """A case as worked-example text: the task, its first steps (each cut to `max_chars`), how it went."""
    steps = [s if len(s) <= max_chars else s[: max_chars - 1] + "…" for s in case.trajectory[:max_steps]]
    if len(case.trajectory) > max_steps:
        steps.append(f"… ({len(case.trajectory) - max_steps} more steps)")
    how = "succeeded" if case.success else "failed"
    lines = [f"Task: {case.task}", *(f"  {s}" for s in steps)]
    lines.append(f"Result: {how} (reward {case.reward:g}){': ' + case.outcome if case.outcome else ''}")
    return "\n".join(lines)


def render_solved(case: CaseRecord) -> str:
    """A solved training item as a worked example: the problem, then the policy's own verified solution."""
    solution = case.trajectory[0] if case.trajectory else case.outcome
    return f"Problem: {case.task}\nSolution: {solution}"
