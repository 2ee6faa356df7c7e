"""FakeOpenAIServer: a real HTTP server on a loopback port that speaks the OpenAI chat API and plays a
script of faults (429 with or without Retry-After, 5xx, slow answers, cut connections, bad bodies).

Adapters are tested at the wire against it, never by patching their methods.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["Action", "FakeOpenAIServer", "chat_body"]


class Action(BaseModel):
    """What the server does with one request."""

    status: int = 200
    headers: dict[str, str] = Field(default_factory=dict)
    text: str | None = None  # the assistant's answer on a 200
    body: str | None = None  # a raw body instead (malformed JSON, error payloads)
    delay_s: float = 0.0
    reset: bool = False  # close the connection without answering
    finish_reason: str = "stop"
    prompt_tokens: int = 10
    completion_tokens: int = 5
    empty_choices: bool = False


def chat_body(a: Action, n: int = 1, model: str = "fake") -> dict[str, Any]:
    choices = (
        []
        if a.empty_choices
        else [
            {
                "index": i,
                "message": {"role": "assistant", "content": a.text or "ok"},
                "finish_reason": a.finish_reason,
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


class FakeOpenAIServer:
    """Plays `script` in order, then `default` for every later request. Records requests with timestamps."""

    def __init__(self, script: list[Action] | None = None, default: Action | None = None) -> None:
        self.script = list(script or [])
        self.default = default or Action()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

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
                record = {
                    "t": time.monotonic(),
                    "path": self.path,
                    "body": body,
                    "headers": dict(self.headers),
                }
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
                    payload = a.body
                elif a.status == 200:
                    payload = json.dumps(
                        chat_body(a, int(body.get("n") or 1), str(body.get("model", "fake")))
                    )
                else:
                    payload = json.dumps(
                        {"error": {"message": f"scripted {a.status}", "type": "fake", "code": a.status}}
                    )
                self._send(a.status, payload, a.headers)

            def _send(self, status: int, payload: str, headers: dict[str, str]) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
