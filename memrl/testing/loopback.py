"""What the fake provider servers share: a threaded HTTP server on a free loopback port, and its lifecycle."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

__all__ = ["LoopbackHTTPServer", "LoopbackServer"]

S = TypeVar("S", bound="LoopbackServer")


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for local test and bench traffic: a listen backlog that holds a burst of
    concurrent clients, daemon handler threads, and no traceback for a client that hung up."""

    daemon_threads = True
    request_queue_size = 256  # the default backlog (5) drops connections in bursts: clients then time out

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away is not news
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler` on 127.0.0.1:<free port> from a daemon thread; a context manager."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self: S) -> S:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
