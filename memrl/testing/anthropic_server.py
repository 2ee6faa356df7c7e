"""FakeAnthropicServer: a real HTTP server on a loopback port that speaks Anthropic's Messages API.

`POST /v1/messages` (plain JSON, or server-sent events with `"stream": true`) and
`POST /v1/messages/count_tokens`. It answers from a script of `Action`s (the same faults as
`FakeOpenAIServer`: statuses, Retry-After, delays, cut connections, raw bodies) or from a `reply` function
of the request body, which may return text or content blocks (`tool_use` included), and records every
request it gets. The real `anthropic` SDK client is pointed at `server.base_url`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from memrl.testing.loopback import LoopbackServer
from memrl.testing.server import Action

__all__ = ["FakeAnthropicServer", "message_body", "sse_events"]

#: A reply: the assistant's text, or its content blocks (`{"type": "text"|"tool_use", ...}`).
Reply = Callable[[dict[str, Any]], "str | list[dict[str, Any]]"]

_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}  # fmt: skip


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out = []
    for i, b in enumerate(content):
        if b.get("type") == "tool_use":
            b = {"id": f"toolu_fake{i:04d}", "input": {}, **b}
        out.append(b)
    return out


def message_body(a: Action, content: str | list[dict[str, Any]], model: str) -> dict[str, Any]:
    blocks = _blocks(content)
    if any(b["type"] == "tool_use" for b in blocks):
        stop = "tool_use"
    else:
        stop = {"stop": "end_turn", "length": "max_tokens"}.get(a.finish_reason, a.finish_reason)
    return {
        "id": f"msg_fake{int(time.time() * 1000) % 10**9}", "type": "message", "role": "assistant",
        "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": a.prompt_tokens, "output_tokens": a.completion_tokens},
    }  # fmt: skip


def sse_events(message: dict[str, Any]) -> str:
    """The message as the stream of server-sent events the Messages API sends for `stream: true`."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 0}}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for i, b in enumerate(message["content"]):
        if b["type"] == "tool_use":
            first = {**b, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}
        else:
            first, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": b.get("text", "")}
        events += [
            ("content_block_start", {"type": "content_block_start", "index": i, "content_block": first}),
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": i}),
        ]
    events += [
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": message["usage"]["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def _count_tokens(body: dict[str, Any]) -> int:
    text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", []))
    return max(1, len(text) // 4)


class FakeAnthropicServer(LoopbackServer):
    """Plays `script` in order, then `default` (or `reply`'s answer) for every later request."""

    def __init__(
        self, script: list[Action] | None = None, default: Action | None = None, reply: Reply | None = None
    ) -> None:
        self.script = list(script or [])
        self.default = default or Action()
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._serve(self._handler())

    @property
    def base_url(self) -> str:
        """What `anthropic.Anthropic(base_url=...)` takes (the SDK adds `/v1/messages`)."""
        return f"http://127.0.0.1:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        """The bodies of the `/v1/messages` requests received (count_tokens excluded), in order."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].split("?")[0] == "/v1/messages"]

    def _next(self, record: dict[str, Any]) -> Action:
        with self._lock:
            self.requests.append(record)
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                path = self.path.split("?")[0]
                record = {
                    "t": time.monotonic(),
                    "path": self.path,
                    "body": body,
                    "headers": dict(self.headers),
                }
                if path == "/v1/messages/count_tokens":
                    with server._lock:
                        server.requests.append(record)
                    self._send(200, json.dumps({"input_tokens": _count_tokens(body)}), {})
                    return
                if path != "/v1/messages":
                    err = {
                        "type": "error",
                        "error": {"type": "not_found_error", "message": f"no route {path}"},
                    }
                    self._send(404, json.dumps(err), {})
                    return
                a = server._next(record)
                if a.delay_s:
                    time.sleep(a.delay_s)
                if a.reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                    return
                if a.body is not None:
                    self._send(a.status, a.body, a.headers)
                elif a.status != 200:
                    kind = _ERRORS.get(a.status, "api_error")
                    err = {"type": "error", "error": {"type": kind, "message": f"scripted {a.status}"}}
                    self._send(a.status, json.dumps(err), a.headers)
                else:
                    content = server.reply(body) if server.reply and a.text is None else (a.text or "ok")
                    msg = message_body(a, content, str(body.get("model", "fake")))
                    if body.get("stream"):
                        self._send(200, sse_events(msg), a.headers, "text/event-stream")
                    else:
                        self._send(200, json.dumps(msg), a.headers)

            def _send(
                self, status: int, payload: str, headers: dict[str, str], ctype: str = "application/json"
            ) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_fake")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
