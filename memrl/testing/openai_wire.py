"""The OpenAI wire shapes `FakeOpenAIServer` answers with beyond a plain chat completion: tool calls, the
Responses API (`POST /v1/responses`) and the server-sent events of `"stream": true` for both APIs.

A reply is the assistant's text, or a list of tool calls `{"name": ..., "arguments": "<json>"}` (an `id`
is made up when absent). Streamed text is cut into word-sized deltas whose concatenation is the text.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

__all__ = ["Reply", "tool_calls", "split_text", "chat_sse", "responses_body", "responses_sse"]

#: The assistant's answer: text, or the tool calls it asks for.
Reply = str | list[dict[str, Any]]


def tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat-completions `tool_calls` for a list of `{"name", "arguments"}` (ids `call_fake0`, ...)."""
    return [
        {
            "id": c.get("id", f"call_fake{i}"),
            "type": "function",
            "function": {"name": c["name"], "arguments": c.get("arguments", "{}")},
        }
        for i, c in enumerate(calls)
    ]


def split_text(text: str) -> list[str]:
    """Word-sized pieces of `text` (each with the whitespace before it) that join back to `text`."""
    return re.findall(r"\s*\S+|\s+$", text) or [""]


def _sse(events: list[tuple[str | None, Any]]) -> str:
    lines = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        lines.append(f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(lines)


def chat_sse(body: dict[str, Any], usage: bool = False) -> str:
    """A chat completion (as `chat_body` builds it) as the `chat.completion.chunk` events of a stream, with
    a last chunk carrying the usage when `usage` (the request's `stream_options.include_usage`)."""
    base = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    events: list[tuple[str | None, Any]] = []
    for choice in body["choices"]:
        i, msg = choice["index"], choice["message"]
        events.append(
            (None, {**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}}]})
        )
        for n, call in enumerate(msg.get("tool_calls") or []):
            delta = {"tool_calls": [{"index": n, **call}]}
            events.append((None, {**base, "choices": [{"index": i, "delta": delta}]}))
        for piece in split_text(msg["content"]) if msg.get("content") else []:
            events.append((None, {**base, "choices": [{"index": i, "delta": {"content": piece}}]}))
        end = {"index": i, "delta": {}, "finish_reason": choice["finish_reason"]}
        events.append((None, {**base, "choices": [end]}))
    if usage:
        events.append((None, {**base, "choices": [], "usage": body["usage"]}))
    return _sse([*events, (None, "[DONE]")])


def responses_body(reply: Reply, model: str, usage: tuple[int, int]) -> dict[str, Any]:
    """A Responses API `response` object: one output message with the text, or `function_call` items."""
    if isinstance(reply, str):
        text = {"type": "output_text", "text": reply, "annotations": []}
        output = [{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                   "content": [text]}]  # fmt: skip
    else:
        output = [
            {"type": "function_call", "id": f"fc_fake{i}", "call_id": c.get("id", f"call_fake{i}"),
             "name": c["name"], "arguments": c.get("arguments", "{}"), "status": "completed"}
            for i, c in enumerate(reply)
        ]  # fmt: skip
    inp, out = usage
    return {
        "id": "resp_fake", "object": "response", "created_at": int(time.time()), "status": "completed",
        "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip


def responses_sse(response: dict[str, Any]) -> str:
    """A response as the events the Responses API streams: created, the output items with their text
    deltas, completed."""
    seq = iter(range(10**6))
    events: list[tuple[str | None, Any]] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": next(seq), **data}))

    emit("response.created", response={**response, "status": "in_progress", "output": []})
    for i, item in enumerate(response["output"]):
        if item["type"] != "message":
            emit("response.output_item.added", output_index=i, item=item)
            emit("response.output_item.done", output_index=i, item=item)
            continue
        emit(
            "response.output_item.added",
            output_index=i,
            item={**item, "status": "in_progress", "content": []},
        )
        where = {"item_id": item["id"], "output_index": i, "content_index": 0}
        emit("response.content_part.added", **where, part={**item["content"][0], "text": ""})
        text = item["content"][0]["text"]
        for piece in split_text(text):
            emit("response.output_text.delta", **where, delta=piece, logprobs=[])
        emit("response.output_text.done", **where, text=text, logprobs=[])
        emit("response.content_part.done", **where, part=item["content"][0])
        emit("response.output_item.done", output_index=i, item=item)
    emit("response.completed", response=response)
    return _sse(events)
