"""The embedded llama.cpp server lives as long as the memrl process that started it, not as long as the
thread that started it, and dies with that process even when it is killed with SIGKILL."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import needs_local

pytestmark = needs_local

CHILD = """
import threading, time
from memrl.llm.local import shared_server
started = []
t = threading.Thread(target=lambda: started.append(shared_server("local")))
t.start()
t.join()  # the thread that started the server is gone from here on
print(started[0].proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def _read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout_s):
        raise AssertionError(f"the child printed no server pid within {timeout_s:.0f}s")
    return proc.stdout.readline()


def test_server_outlives_its_starting_thread_and_dies_with_a_sigkilled_parent():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    server = None
    try:
        server = int(_read_line(child, 240))
        time.sleep(1.5)
        assert _alive(server), "the server died with the thread that started it"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server), "the server outlived the memrl process that started it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
