"""FakeOpenAIServer: a real HTTP server on a loopback port that speaks the OpenAI chat and Responses APIs
(JSON, or server-sent events for `"stream": true`; text or tool calls, see memrl.testing.openai_wire) and
plays a script of faults (429 with or without Retry-After, 5xx, slow answers, cut connections, bad bodies).

Adapters are tested at the wire against it, never by patching their methods. Beyond the script, a
`responder` makes answers a function of the request (a deterministic toy model), a `faults` injector
picks a fault for each request (see memrl.testing.faults), and `on_request` sees every request as it
arrives (a test can kill its client there). Every request is recorded with the fault it got and its
outcome: `"ok"` for a complete answer with choices (what a provider bills), else what went wrong.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from pydantic import BaseModel, Field

from memrl.testing.loopback import LoopbackServer
from memrl.testing.openai_wire import Reply, chat_sse, responses_body, responses_sse, tool_calls

__all__ = ["Action", "FakeOpenAIServer", "Injector", "Responder", "chat_body"]


class Action(BaseModel):
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = Field(default_factory=dict)
    text: str | None = None  # the assistant's answer on a 200
    body: str | None = None  # a raw body instead (malformed JSON, error payloads)
    delay_s: float = 0.0
    reset: bool = False  # close the connection without answering
    reset_after_bytes: int | None = None  # send the headers and this many body bytes, then reset
    finish_reason: str = "stop"
    prompt_tokens: int = 10
    completion_tokens: int = 5
    empty_choices: bool = False
    tool_calls: list[dict[str, Any]] | None = None  # `{"name", "arguments"}` the assistant calls on a 200


def _text(a: Action) -> str | None:
    if a.text is not None:
        return a.text
    return None if a.tool_calls else "ok"


def chat_body(a: Action, n: int = 1, model: str = "fake") -> dict[str, Any]:
    choices = (
        []
        if a.empty_choices
        else [
            {
                "index": i,
                "message": {"role": "assistant", "content": _text(a)}
                | ({"tool_calls": tool_calls(a.tool_calls)} if a.tool_calls else {}),
                "finish_reason": "tool_calls" if a.tool_calls else a.finish_reason,
            }
            for i in range(n)
        ]
    )
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens * n,
                  "total_tokens": a.prompt_tokens + a.completion_tokens * n},
    }  # fmt: skip


#: The answer of a 200 as a function of the request body (a toy model): its text, or the tool calls
#: (`{"name", "arguments"}`) the assistant asks for.
Responder = Callable[[dict[str, Any]], Reply]
#: A fault for this request, as (kind, action), or None to answer normally.
Injector = Callable[[dict[str, Any]], "tuple[str, Action] | None"]


def _answer(a: Action, reply: Reply | None, body: dict[str, Any], path: str) -> tuple[str, str]:
    """The payload of a 200 and its content type: a chat completion or a Responses API `response`,
    as JSON or, for `"stream": true`, as server-sent events."""
    model = str(body.get("model", "fake"))
    if isinstance(reply, list):
        a = a.model_copy(update={"text": None, "tool_calls": reply})
    elif reply is not None:
        a = a.model_copy(update={"text": reply, "tool_calls": None})
    stream = bool(body.get("stream"))
    if path.rstrip("/").endswith("/responses"):
        resp = responses_body(a.tool_calls or _text(a) or "", model, (a.prompt_tokens, a.completion_tokens))
        payload = responses_sse(resp) if stream else json.dumps(resp)
    else:
        chat = chat_body(a, int(body.get("n") or 1), model)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        payload = chat_sse(chat, usage) if stream else json.dumps(chat)
    return payload, "text/event-stream" if stream else "application/json"


class FakeOpenAIServer(LoopbackServer):
    """Plays `script` in order, then an injected fault or `default` for every later request.

    Records requests with timestamps, the fault each got (`record["fault"]`) and their outcome
    (`record["outcome"]`); `outcomes` counts the outcomes."""

    def __init__(
        self,
        script: list[Action] | None = None,
        default: Action | None = None,
        *,
        responder: Responder | None = None,
        faults: Injector | None = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.default = default or Action()
        self.responder = responder
        self.faults = faults
        self.on_request = on_request
        self.requests: list[dict[str, Any]] = []
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._serve(self._handler())

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self, record: dict[str, Any]) -> Action:
        with self._lock:
            self.requests.append(record)
            if self.script:
                return self.script.pop(0)
        picked = self.faults(record["body"]) if self.faults is not None else None
        if picked is None:
            return self.default
        record["fault"], action = picked
        return action

    def _done(self, record: dict[str, Any], outcome: str) -> None:
        with self._lock:
            record["outcome"] = outcome
            self.outcomes[outcome] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(
                    200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}), {}
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                record: dict[str, Any] = {
                    "t": time.monotonic(),
                    "path": self.path,
                    "body": body,
                    "headers": dict(self.headers),
                    "fault": None,
                }
                a = server._next(record)
                if server.on_request is not None:
                    server.on_request(record)
                if a.delay_s:
                    time.sleep(a.delay_s)
                if a.reset:
                    self._reset()
                    server._done(record, "reset")
                    return
                outcome, kind = "ok", "application/json"
                if a.body is not None:
                    payload, outcome = a.body, "raw_body"
                elif a.status == 200:
                    reply: Reply | None = a.text if a.text is not None else a.tool_calls
                    if reply is None and server.responder is not None:
                        reply = server.responder(body)
                    payload, kind = _answer(a, reply, body, self.path)
                    outcome = "empty_choices" if a.empty_choices else "ok"
                else:
                    payload = json.dumps(
                        {"error": {"message": f"scripted {a.status}", "type": "fake", "code": a.status}}
                    )
                    outcome = f"status_{a.status}"
                try:
                    if a.reset_after_bytes is not None:
                        self._send(a.status, payload, a.headers, cut=a.reset_after_bytes)
                        self._reset()
                        outcome = "reset_mid_body"
                    else:
                        self._send(a.status, payload, a.headers, kind=kind)
                except OSError:  # the client gave up (timed out) before the answer came
                    outcome = "client_gone"
                server._done(record, outcome)

            def _reset(self) -> None:
                # Linger 0 makes the close send a RST; the socket closes only when its file objects do.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.close_connection = True
                for f in (self.rfile, self.wfile):
                    with contextlib.suppress(OSError):
                        f.close()
                self.connection.close()
                self.wfile = io.BytesIO()  # what the base class still flushes after us goes nowhere

            def _send(
                self,
                status: int,
                payload: str,
                headers: dict[str, str],
                cut: int | None = None,
                kind: str = "application/json",
            ) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data if cut is None else data[: max(0, min(cut, len(data) - 1))])
                self.wfile.flush()

        return Handler
