"""Run untrusted Python in a separate, limited process.

Each run gets a fresh temporary working directory (deleted afterwards), a minimal environment, Python's
isolated mode (``-I``: no user site, no PYTHON* variables), and these limits, set in the child before the
code runs:

- wall-clock ``timeout_s``: the whole process group is killed when it runs out, and so is every process
  left in the run's cgroup (which catches children that left the group with ``setsid``);
- address space (``RLIMIT_AS``) of ``memory_mb`` per process, so a large allocation raises
  ``MemoryError``; with cgroups, also ``memory_mb`` for all the run's processes together;
- CPU seconds (``RLIMIT_CPU``), written-file size (``RLIMIT_FSIZE``), open files, and processes: 64 per
  run in a cgroup of its own where the kernel allows one (root included), else ``RLIMIT_NPROC``, which
  the kernel does not apply to root;
- no writes outside the working directory: Landlock (Linux ≥ 5.13) lets the child and its children
  write, create, rename and delete files only there; metadata changes (chmod, chown, utime), which
  Landlock does not cover, are refused there by a mount namespace of the run's own in which every mount
  but the working directory is read-only (root, or where the kernel allows user namespaces);
- no network: the child runs in a new, empty network namespace (``unshare -n``) where that is permitted,
  Landlock (ABI ≥ 4) refuses TCP connect and bind, and in every case ``socket`` is replaced before the
  code runs, so opening a socket raises ``OSError``; with Landlock ABI ≥ 6 the child can signal no
  process outside the sandbox.

See memrl.tasks.sandbox_limits for what is available here (`landlock_abi()`, `cgroups_available()`,
`private_mounts_available()`).
This is a guard against accidents and careless code (runaway loops, fork bombs, huge allocations, stray
downloads and writes), not a security boundary against hostile code: use a container or VM for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from memrl.tasks.sandbox_limits import CHILD_CONFINE, RunCgroup, cgroups_available, user_task_count

__all__ = ["SandboxResult", "run_python", "arun_python", "network_isolation_available"]

log = logging.getLogger(__name__)

_OUTPUT_LIMIT = 1 << 20  # bytes a child may write to each of stdout and stderr (RLIMIT_FSIZE)
_KEEP = 16_000  # characters of each stream kept in the result
_MAX_PROCS = 64  # processes (tasks) a run may have at once

# Runs in the child before the user's code: limits first, then the network block, then the code.
_BOOTSTRAP = (
    CHILD_CONFINE
    + r"""
import os, resource, sys
sys.dont_write_bytecode = True
for _p in [p for p in sys.argv[7].split(os.pathsep) if p]:
    with open(_p, "w") as _f:  # join the run's cgroups before anything else: "0" is this process
        _f.write("0")
def _limit(kind, value):
    try:
        soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass
_mem, _cpu, _fsize, _nproc = (int(a) for a in sys.argv[2:6])
_limit(resource.RLIMIT_AS, _mem)
_limit(resource.RLIMIT_DATA, _mem)
_limit(resource.RLIMIT_CPU, _cpu)
_limit(resource.RLIMIT_FSIZE, _fsize)
_limit(resource.RLIMIT_NOFILE, 64)
_limit(resource.RLIMIT_NPROC, _nproc)
_limit(resource.RLIMIT_CORE, 0)
_confine(sys.argv[6])
import socket, _socket
def _no_network(*args, **kwargs):
    raise OSError(101, "network access is disabled in the memrl sandbox")
class _NoSocket:
    def __new__(cls, *args, **kwargs):
        _no_network()
for _mod in (socket, _socket):
    for _name in ("socket", "SocketType", "socketpair", "fromfd", "create_connection", "create_server",
                  "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        if hasattr(_mod, _name):
            setattr(_mod, _name, _NoSocket if _name in ("socket", "SocketType") else _no_network)
del _mod, _name, _limit, _mem, _cpu, _fsize, _nproc, _confine, _private_mounts
_path = sys.argv[1]
sys.argv = [_path]
with open(_path, encoding="utf-8") as _f:
    _code = compile(_f.read(), _path, "exec")
del _f, _path
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
"""
)


class SandboxResult(BaseModel):
    """What one sandboxed run did."""

    returncode: int | None
    """The exit status; negative for a signal (e.g. -9 when killed); None if it never started."""
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def summary(self, limit: int = 300) -> str:
        """A one-line account for a verdict's reason."""
        if self.timed_out:
            return f"timed out after {self.duration_s:.1f}s"
        if self.ok:
            return "exited 0"
        tail = self.stderr.strip().splitlines()
        last = tail[-1] if tail else ""
        code = self.returncode
        what = f"killed by signal {-code}" if code is not None and code < 0 else f"exited {code}"
        return f"{what}: {last}"[:limit]


@functools.lru_cache(maxsize=1)
def network_isolation_available() -> bool:
    """Whether `unshare -n` can give a child an empty network namespace here (needs privileges)."""
    exe = shutil.which("unshare")
    if exe is None or not sys.platform.startswith("linux"):
        return False
    try:
        done = subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _nproc() -> int:
    """RLIMIT_NPROC counts every task of the user, so a non-root user gets room above what it runs."""
    return _MAX_PROCS if os.getuid() == 0 else user_task_count() + _MAX_PROCS


def _command(script: Path, timeout_s: float, memory_mb: int, cgroups: list[str]) -> list[str]:
    cpu = max(1, int(timeout_s) + 1)
    cmd = [
        sys.executable,
        "-I",
        "-c",
        _BOOTSTRAP,
        str(script),
        str(memory_mb << 20),
        str(cpu),
        str(_OUTPUT_LIMIT),
        str(_nproc()),
        str(script.parent),
        os.pathsep.join(cgroups),
    ]
    if network_isolation_available():
        cmd = [shutil.which("unshare") or "unshare", "-n", *cmd]
    return cmd


def _env(workdir: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    return env


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= _KEEP else text[: _KEEP // 2] + "\n…[output cut]…\n" + text[-_KEEP // 2 :]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class _Run:
    """The files of one run: a fresh working directory holding the script, and the captured streams
    beside it (not inside it, so the code cannot read or rewrite them)."""

    def __init__(self, code: str, timeout_s: float, memory_mb: int) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if memory_mb < 16:
            raise ValueError("memory_mb must be at least 16 (Python itself needs that much)")
        self._tmp = tempfile.TemporaryDirectory(prefix="memrl-sandbox-")
        root = Path(self._tmp.name)
        self.work = root / "work"
        self.work.mkdir()
        script = self.work / "main.py"
        script.write_text(code, encoding="utf-8")
        self.cgroup = RunCgroup(_MAX_PROCS, (memory_mb + 64) << 20) if cgroups_available() else None
        self.command = _command(script, timeout_s, memory_mb, self.cgroup.procs_files if self.cgroup else [])
        self.env = _env(self.work)
        self._out_path, self._err_path = root / "stdout", root / "stderr"
        self.stdout = self._out_path.open("wb")
        self.stderr = self._err_path.open("wb")
        self.start = time.monotonic()

    def result(self, returncode: int | None, timed_out: bool, note: str = "") -> SandboxResult:
        duration = time.monotonic() - self.start
        self.stdout.close()
        self.stderr.close()
        return SandboxResult(
            returncode=returncode,
            stdout=_read(self._out_path),
            stderr=note or _read(self._err_path),
            timed_out=timed_out,
            duration_s=duration,
        )

    def kill_rest(self) -> None:
        """Kill whatever of the run is still alive, in its process group or anywhere in its cgroup."""
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        if self.cgroup is not None:
            self.cgroup.kill_all()
            self.cgroup.remove()
        self._tmp.cleanup()


def _popen_kwargs(run: _Run) -> dict[str, object]:
    return {
        "cwd": run.work,
        "env": run.env,
        "stdin": subprocess.DEVNULL,
        "stdout": run.stdout,
        "stderr": run.stderr,
        "start_new_session": True,  # its own process group, killed as a whole
    }


def run_python(code: str, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Run `code` as a Python program in a limited child process and wait for it."""
    run = _Run(code, timeout_s, memory_mb)
    try:
        try:
            proc = subprocess.Popen(run.command, **_popen_kwargs(run))  # type: ignore[call-overload]
        except OSError as e:
            return run.result(None, False, f"could not start Python: {e}")
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # on timeout, on an interrupt, and for any children left behind
            _kill_group(proc.pid)
            run.kill_rest()
            proc.wait()
        return run.result(proc.returncode, timed_out)
    finally:
        run.close()


async def arun_python(code: str, timeout_s: float = 10.0, memory_mb: int = 512) -> SandboxResult:
    """Async `run_python`: the event loop keeps running while the child does."""
    run = _Run(code, timeout_s, memory_mb)
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *run.command,
                **_popen_kwargs(run),  # type: ignore[arg-type]
            )
        except OSError as e:
            return run.result(None, False, f"could not start Python: {e}")
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
        finally:  # also when cancelled: never leave the child running
            _kill_group(proc.pid)
            run.kill_rest()
        await proc.wait()
        return run.result(proc.returncode, timed_out)
    finally:
        run.close()
