"""Where memory goes in the messages: `policy_messages` builds the policy's own prompt for an item (learning,
evaluation, the bench), and `inject` places the same block into the chat messages apps actually send.

The same placement (`system` by default, or `user`) is used while learning and when deployed.

Three shapes are understood: memrl's `Message`, OpenAI chat dicts (`content` a string or a list of parts
such as `{"type": "text", "text": ...}`) and Anthropic message dicts (the same, with `tool_use` and
`tool_result` blocks; the system prompt travels in a separate `system=` argument). The caller's list is
never changed: a changed message is copied.

The *query message* is the last user message that carries text. In an agent's tool loop that stays the
task (OpenAI tool results have role `tool`; Anthropic ones are user messages with only `tool_result`
blocks), so the same memory is injected on every turn of one task.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from memrl.prompts import render
from memrl.spec import PromptSpec
from memrl.types import Item, Message

__all__ = [
    "policy_messages",
    "Placement",
    "content_text",
    "query_index",
    "query_text",
    "inject",
    "inject_system",
    "add_text",
    "trajectory_lines",
]

Placement = Literal["system", "user"]
_TEXT_PARTS = ("text", "input_text")
_SYSTEM_ROLES = ("system", "developer")


def _role(msg: Any) -> str | None:
    return msg.get("role") if isinstance(msg, dict) else getattr(msg, "role", None)


def _content(msg: Any) -> Any:
    return msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", None)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in _TEXT_PARTS]
        return "\n".join(t for t in parts if t)
    return ""


def query_index(messages: Sequence[Any]) -> int | None:
    """Index of the last user message with text (the task being worked on), or None."""
    for i in range(len(messages) - 1, -1, -1):
        if _role(messages[i]) == "user" and content_text(_content(messages[i])).strip():
            return i
    return None


def query_text(messages: Sequence[Any]) -> str:
    i = query_index(messages)
    return content_text(_content(messages[i])).strip() if i is not None else ""


def add_text(content: Any, block: str, *, front: bool) -> Any:
    """Content with `block` added: joined to a string, or as its own text part in a list of parts."""
    if isinstance(content, str) or content is None:
        text = content or ""
        if not text:
            return block
        return f"{block}\n\n{text}" if front else f"{text}\n\n{block}"
    parts = list(content)
    kind = next(
        (p.get("type") for p in parts if isinstance(p, dict) and p.get("type") in _TEXT_PARTS), "text"
    )
    part = {"type": kind, "text": block}
    return [part, *parts] if front else [*parts, part]


def _replace(msg: Any, content: Any) -> Any:
    if isinstance(msg, dict):
        return {**msg, "content": content}
    if isinstance(msg, Message):
        return msg.model_copy(update={"content": content})
    raise TypeError(f"cannot place memory in a message of type {type(msg).__name__}; pass dicts or Messages")


def inject(messages: Sequence[Any], block: str, placement: Placement = "system") -> list[Any]:
    """A copy of `messages` with `block` placed as learning placed it.

    `system`: appended to the first system (or `developer`) message, or a new system message in front.
    `user`: put before the text of the query message. Injecting the same block twice changes nothing.
    """
    out = list(messages)
    if not block:
        return out
    if placement == "system":
        i = next((j for j, m in enumerate(out) if _role(m) in _SYSTEM_ROLES), None)
        if i is None:
            new: Any = (
                Message.system(block)
                if out and isinstance(out[0], Message)
                else {"role": "system", "content": block}
            )
            return [new, *out]
        if block not in content_text(_content(out[i])):
            out[i] = _replace(out[i], add_text(_content(out[i]), block, front=False))
        return out
    i = query_index(out)
    if i is None:
        raise ValueError("memory placement 'user' needs a user message with text to put the memory in")
    if block not in content_text(_content(out[i])):
        out[i] = _replace(out[i], add_text(_content(out[i]), block, front=True))
    return out


def inject_system(system: Any, block: str) -> Any:
    """Anthropic's `system=` argument (absent, a string, or a list of text blocks) with `block` appended."""
    if not block:
        return system
    if system is None or isinstance(system, str):
        return add_text(system, block, front=False) if block not in (system or "") else system
    return system if block in content_text(system) else add_text(system, block, front=False)


def _part_lines(part: Any) -> list[str]:
    if not isinstance(part, dict):
        return []
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return [part.get("text", "")]
    if kind == "tool_use":
        return [f"call {part.get('name')}({json.dumps(part.get('input'), sort_keys=True)})"]
    if kind == "tool_result":
        return [f"result: {content_text(part.get('content')) or part.get('content')}"]
    return []


def trajectory_lines(trajectory: str | Sequence[Any]) -> list[str]:
    """A trajectory as readable steps: a string is one step; messages become `role: text` lines, with
    OpenAI `tool_calls` and Anthropic `tool_use` / `tool_result` blocks written out."""
    if isinstance(trajectory, str):
        return [trajectory] if trajectory.strip() else []
    lines: list[str] = []
    for msg in trajectory:
        if isinstance(msg, str):
            lines.append(msg)
            continue
        role, content = _role(msg) or "?", _content(msg)
        texts = [content] if isinstance(content, str) else [t for p in content or [] for t in _part_lines(p)]
        calls = msg.get("tool_calls") if isinstance(msg, dict) else None
        for call in calls or []:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            texts.append(f"call {fn.get('name')}({fn.get('arguments', '')})")
        text = "\n".join(t for t in texts if t).strip()
        if text:
            lines.append(f"{role}: {text}")
    return lines


def policy_messages(prompt: PromptSpec, item: Item, memory: str = "") -> list[Message]:
    """The policy's messages for one item, with the memory block placed where the task file says."""
    system = render(prompt.system, question=item.question, meta=item.meta)
    user = render(prompt.template, question=item.question, meta=item.meta)
    if memory:
        if prompt.memory_placement == "system":
            system = f"{system}\n\n{memory}" if system else memory
        else:
            user = f"{memory}\n\n{user}"
    msgs = [Message.system(system)] if system else []
    return [*msgs, Message.user(user)]
