"""llama.cpp's own server (`llama-server`) as the embedded local model, where the binary is installed.

llama-cpp-python's server answers one request at a time; `llama-server -np 4` decodes up to four sequences
together (continuous batching), and evaluates a prompt once for all the samples of one request (`n`).
The same compile that builds llama-cpp-python builds it when asked (one build, no second checkout):

    CMAKE_ARGS="-DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_TOOLS_INSTALL=ON -DLLAVA_BUILD=OFF \
      -DLLAMA_USE_PREBUILT_UI=OFF" pip install llama-cpp-python

(`LLAVA_BUILD=OFF`: llama.cpp's tools add the multimodal library themselves; only llama-cpp-python's
multimodal chat handlers need it in `llama_cpp/lib`.) pip's wheel cache does not key on CMAKE_ARGS: where
a wheel built without the server is cached, `pip cache remove llama_cpp_python` first. memrl finds it

1. at `$MEMRL_LLAMA_SERVER` when that names a file (`off` there keeps llama-cpp-python's server);
2. in `site-packages/bin/`, where that build installs it (its libraries are in `site-packages/lib/`, which
   memrl puts on its library path: the binary carries no rpath);
3. next to the Python executable.

Without one, memrl uses llama-cpp-python's server as before. Same guarantees as that server: memrl starts
it on a free loopback port, reaches it as `openai/local`, stops it on exit, and it dies with memrl even on
SIGKILL: a small watcher forked just before the binary starts ends it when memrl's end of the lifeline pipe
closes (`memrl.llm.local`). Each of the `slots` sequences gets the task's `n_ctx`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from memrl.errors import LocalModelError
from memrl.llm.local import ALIAS, LocalServer

__all__ = ["DEFAULT", "ENV", "LlamaServer", "find_llama_server"]

ENV = "MEMRL_LLAMA_SERVER"
# What memrl does when $MEMRL_LLAMA_SERVER is not set: "off" keeps llama-cpp-python's server (opt-in).
DEFAULT = "off"
_OFF = {"0", "off", "false", "no", "python"}
_ON = {"", "1", "on", "true", "yes", "auto"}
BINARY = "llama-server.exe" if sys.platform == "win32" else "llama-server"


def _candidates() -> list[Path]:
    out = []
    spec = importlib.util.find_spec("llama_cpp")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        out.append(Path(list(spec.submodule_search_locations)[0]).parent / "bin" / BINARY)
    out.append(Path(sys.executable).parent / BINARY)
    return out


def find_llama_server(default: str = "auto") -> Path | None:
    """The llama-server binary to use, or None for llama-cpp-python's server. `$MEMRL_LLAMA_SERVER` decides
    when set (a path, `auto`, or `off`); else `default` does (`auto` or `off`)."""
    value = os.environ.get(ENV, default).strip()
    if value.lower() in _OFF:
        return None
    if value.lower() not in _ON:  # a path
        path = Path(value).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LocalModelError(f"${ENV}={value!r}: no executable llama-server there (or set it to 'off')")
        return path
    return next((p for p in _candidates() if p.is_file() and os.access(p, os.X_OK)), None)


# Becomes the server: forks a watcher that kills it when the pipe on fd argv[1] reads end-of-file (memrl is
# gone, however it ended), then execs the binary in argv[2:]. The watcher dies with the server (Linux
# PR_SET_PDEATHSIG: the server's only thread before exec is its main thread), and signals it only while
# it is still the watcher's parent, so a pid reused after the server ended is never hit.
_WATCHED_BINARY = """
import os, signal, sys
fd, argv, server = int(sys.argv[1]), sys.argv[2:], os.getpid()
if os.fork() == 0:
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass
    try:
        while os.getppid() == server and os.read(fd, 1):
            pass
    except OSError:
        pass
    if os.getppid() == server:
        os.kill(server, signal.SIGKILL)
    os._exit(0)
os.close(fd)
os.execv(argv[0], argv)
"""


class LlamaServer(LocalServer):
    """`llama-server` with `slots` parallel sequences of `n_ctx` tokens each (total context n_ctx × slots).

    Each slot reuses the prefix it still holds from its previous request; `prompt_cache_mb` (the model
    setting) sizes llama-server's RAM cache of saved prompt states (`--cache-ram`; 0, the default, turns
    it off, where llama-server's own default would let it grow to 8 GiB)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        binary: str | Path,
        slots: int = 4,
        **kw: Any,
    ) -> None:
        super().__init__(model_path, **kw)
        self.binary = Path(binary)
        self.slots = slots
        self.concurrency = slots
        self.max_n = slots  # a group's samples in one request: the prompt is evaluated once, then forked

    def command(self) -> list[str]:
        return [str(self.binary), *self._server_args()]

    def _server_args(self) -> list[str]:
        return [
            "--model", str(self.model_path),
            "--alias", ALIAS,
            "--host", self.host,
            "--port", str(self.port),
            "--ctx-size", str(self.n_ctx * self.slots),
            "--parallel", str(self.slots),
            "--threads", str(self.n_threads),
            "--threads-batch", str(self.n_threads),
            "--cache-ram", str(self.prompt_cache_mb),
            "--jinja",  # the chat template stored in the GGUF
            "--no-webui",
        ]  # fmt: skip

    def _check_runtime(self) -> None:
        if not self.binary.is_file():
            raise LocalModelError(f"llama-server not found at {self.binary} (${ENV})")

    def _launch(self, read_end: int) -> tuple[list[str], dict[str, str]]:
        env = dict(os.environ)
        libs = [str(d) for d in (self.binary.parent.parent / "lib",) if d.is_dir()]
        if libs:  # the libllama/libggml built with it, whether or not its rpath names them
            env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, *filter(None, [env.get("LD_LIBRARY_PATH")])])
        return [sys.executable, "-c", _WATCHED_BINARY, str(read_end), *self.command()], env
