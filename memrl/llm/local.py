"""The embedded local model: llama-cpp-python's OpenAI-compatible server on a free loopback port.

`model: local` serves the bundled SmolLM2-135M-Instruct GGUF; `model: local:/path/model.gguf` serves any
GGUF. memrl starts the server, waits until it answers, reuses it for the whole run and stops it on exit,
on Ctrl-C and on errors. If memrl dies without stopping it (SIGKILL included), the server exits too: it
watches a pipe whose only writer is the memrl process, and the kernel closes that pipe when the process
ends, whichever thread started the server (PR_SET_PDEATHSIG, used before, fires when that thread ends).
The model is then reached through litellm as `openai/local` with `api_base`, the same path as hosted APIs.
Where llama.cpp's own `llama-server` is installed, `shared_server` starts that instead: it decodes several
requests at once (`memrl.llm.llama_server`).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from memrl.errors import LocalModelError

__all__ = [
    "ALIAS",
    "SAMPLER",
    "LocalServer",
    "resolve_gguf",
    "running_servers",
    "shared_server",
    "free_port",
    "stop_all",
]

log = logging.getLogger(__name__)

ALIAS = "local"
#: Sampler settings sent with every request to the embedded server. llama-cpp-python's server applies a
#: repetition penalty of 1.1 unless told otherwise (llama-server: 1.0, OpenAI's API: none); code repeats
#: tokens by nature, and on 12 4x4 sudoku puzzles the 1.5B model's greedy programs went from 0 right under
#: the penalty to 9 of 11 without it. memrl asks for what a hosted API does: no penalty.
SAMPLER: dict[str, float] = {"repeat_penalty": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve_gguf(name: str) -> Path:
    """`local` → the bundled SmolLM2 GGUF; `local:<catalog name>` → that model, assembled on first use
    (see `memrl.llm.catalog`); `local:/path.gguf` → that file (checked)."""
    if name == "local":
        from memrl.llm.gguf import default_gguf_path

        return default_gguf_path()
    from memrl.llm.catalog import CATALOG, assemble, named_model

    rest = name.removeprefix("local:")
    if (model := named_model(rest)) is not None:
        return assemble(model)
    path = Path(rest).expanduser()
    if not path.is_file():
        known = ", ".join(f"local:{n}" for n in CATALOG)
        raise LocalModelError(f"model {name!r}: no GGUF file at {path} (named local models: {known})")
    return path


# Runs the server in a child that exits as soon as the pipe on fd argv[1] reads end-of-file, i.e. when the
# memrl process holding its write end is gone; then the server's own arguments follow.
_WATCHED_SERVER = """
import os, runpy, sys, threading
def _watch(fd):
    while os.read(fd, 1):
        pass
    os._exit(1)
threading.Thread(target=_watch, args=(int(sys.argv.pop(1)),), daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LocalServer:
    """One llama.cpp server process. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_threads: int | None = None,
        log_path: str | Path | None = None,
        prompt_cache_mb: int = 0,
    ) -> None:
        """`prompt_cache_mb` > 0 turns on llama-cpp-python's RAM prompt cache (`--cache`): saved states,
        looked up by longest common prefix, up to that many MB of llama.cpp state (the logits copied with
        each state are not counted, so the process grows by more; see `model.prompt_cache_mb`)."""
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.host = host
        self.port = port or free_port()
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"memrl-llama-{self.port}.log"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None  # write end of the pipe the server watches
        self.startup_s: float | None = None
        # Requests worth having in flight: this server answers one at a time, so a second one keeps it busy
        # and more would only queue (queued time counts against the request timeout).
        self.concurrency = 2
        self.max_n: int | None = None  # samples one request may ask for (it ignores `n`)
        self.prompt_cache_mb = prompt_cache_mb

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line (start() runs it under a watch for memrl's exit)."""
        return [sys.executable, "-m", "llama_cpp.server", *self._server_args()]

    def _server_args(self) -> list[str]:
        return [
            "--model", str(self.model_path),
            "--model_alias", ALIAS,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            *(["--cache", "true", "--cache_size", str(self.prompt_cache_mb << 20)] if self.prompt_cache_mb else []),
        ]  # fmt: skip

    def _check_runtime(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelError(
                "model 'local' needs llama-cpp-python's server: pip install 'memrl[local]' "
                "(it compiles llama.cpp once, 5–8 minutes on 2 cores)"
            )

    def _launch(self, read_end: int) -> tuple[list[str], dict[str, str] | None]:
        """The command that runs the server under the watch of pipe `read_end`, and its environment."""
        return [sys.executable, "-c", _WATCHED_SERVER, str(read_end), *self._server_args()], None

    def start(self, timeout_s: float = 180.0) -> LocalServer:
        if self.proc is not None:
            return self
        self._check_runtime()
        t0 = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = self.log_path.open("wb")
        read_end, self._lifeline = os.pipe()  # neither end is inherited by other children
        argv, env = self._launch(read_end)
        try:  # its own session: Ctrl-C in the terminal reaches memrl, which stops the server itself
            self.proc = subprocess.Popen(
                argv, env=env,
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(read_end,), start_new_session=True,
            )  # fmt: skip
        except BaseException:
            self._close_lifeline()
            raise
        finally:
            os.close(read_end)
            logf.close()
        _register(self)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                self.proc = None
                self._close_lifeline()
                raise LocalModelError(f"the local model server exited at start-up; its log ends:\n{tail}")
            try:
                r = httpx.get(f"{self.api_base}/models", timeout=2.0)
                if r.status_code == 200:
                    self.startup_s = time.perf_counter() - t0
                    log.info(
                        "local model %s ready at %s in %.1fs",
                        self.model_path.name,
                        self.api_base,
                        self.startup_s,
                    )
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise LocalModelError(
            f"the local model server did not answer within {timeout_s:.0f}s (log: {self.log_path})"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        try:
            if proc is None or proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        finally:
            self._close_lifeline()

    def _close_lifeline(self) -> None:
        fd, self._lifeline = self._lifeline, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------ one shared server per model per process

_servers: dict[tuple[str, int, int, str], LocalServer] = {}
_all: list[LocalServer] = []
_lock = threading.Lock()


def _register(server: LocalServer) -> None:
    with _lock:
        _all.append(server)


def shared_server(name: str, n_ctx: int = 2048, prompt_cache_mb: int = 0) -> LocalServer:
    """The running server for this model in this process, started on first use."""
    path = resolve_gguf(name)
    binary = _llama_server()
    key = (str(path), n_ctx, prompt_cache_mb, str(binary))
    with _lock:
        srv = _servers.get(key)
    if srv is None or srv.proc is None or srv.proc.poll() is not None:
        srv = _start_server(path, n_ctx=n_ctx, prompt_cache_mb=prompt_cache_mb, binary=binary)
        with _lock:
            _servers[key] = srv
    return srv


def running_servers() -> list[LocalServer]:
    """The servers this process started that are still running."""
    with _lock:
        live = {id(s): s for s in _all if s.proc is not None and s.proc.poll() is None}
    return list(live.values())


def _llama_server() -> Path | None:
    from memrl.llm.llama_server import DEFAULT, find_llama_server

    return find_llama_server(DEFAULT)


def _start_server(path: Path, binary: Path | None, **kw: Any) -> LocalServer:
    """llama-server where one was found, else llama-cpp-python's server. A llama-server found by looking
    (not named by $MEMRL_LLAMA_SERVER) that fails to start is logged and replaced by llama-cpp-python's."""
    if binary is not None:
        from memrl.llm.llama_server import ENV, LlamaServer

        try:
            return LlamaServer(path, binary=binary, **kw).start()
        except LocalModelError as exc:
            if os.environ.get(ENV, "auto").strip().lower() not in ("", "auto"):
                raise
            log.warning("llama-server at %s did not start; using llama-cpp-python's server: %s", binary, exc)
    return LocalServer(path, **kw).start()


def stop_all() -> None:
    with _lock:
        servers = list(_all)
        _all.clear()
        _servers.clear()
    for s in servers:
        with contextlib.suppress(Exception):
            s.stop()


atexit.register(stop_all)
