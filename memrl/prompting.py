"""The policy's messages for one item, with learned memory placed where the task file says.

The same function builds the prompt while learning and when deployed, so memory always sits in the
same place (system prompt by default).
"""

from __future__ import annotations

from memrl.prompts import load_prompt, render
from memrl.spec import PromptSpec
from memrl.types import Item, Message

__all__ = ["policy_messages", "memory_block"]


def memory_block(lessons: list[str], cases: list[str] | None = None) -> str:
    """Render lessons (and worked cases) as one block of text, or '' when there is nothing to inject."""
    if not lessons and not cases:
        return ""
    return load_prompt("memory_block").text("user", lessons=lessons, cases=cases or [])


def policy_messages(prompt: PromptSpec, item: Item, memory: str = "") -> list[Message]:
    system = render(prompt.system, question=item.question, meta=item.meta)
    user = render(prompt.template, question=item.question, meta=item.meta)
    if memory:
        if prompt.memory_placement == "system":
            system = f"{system}\n\n{memory}" if system else memory
        else:
            user = f"{memory}\n\n{user}"
    msgs = [Message.system(system)] if system else []
    return [*msgs, Message.user(user)]
