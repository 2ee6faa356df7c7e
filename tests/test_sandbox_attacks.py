"""The sandbox against code that tries to get out: writes and chmod/chown outside its directory, network without the
socket module, signals to other processes, escapes from its process group, fork bombs, memory and disk
floods, loops that ignore signals, and secrets in the environment.

Protections that need a kernel feature are skipped where the feature is missing (see
memrl.tasks.sandbox_limits); a fork bomb is never run where nothing would cap it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_sandbox import NETWORK_ERROR, tcp_server  # noqa: F401 - a fixture

from memrl.tasks import sandbox
from memrl.tasks.sandbox import run_python
from memrl.tasks.sandbox_limits import cgroups_available, landlock_abi, private_mounts_available

needs_landlock = pytest.mark.skipif(landlock_abi() < 2, reason="Landlock (ABI >= 2) is not available")
needs_private_mounts = pytest.mark.skipif(
    not private_mounts_available(), reason="no mount namespace of its own for a run here"
)
needs_cgroups = pytest.mark.skipif(not cgroups_available(), reason="no cgroup of its own for a run here")
process_cap = cgroups_available() or os.getuid() != 0  # RLIMIT_NPROC binds every user but root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def _leftovers(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (a run's temporary directory)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker in (p / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                continue
    return out


WRITES = {
    "absolute-path": "open({target!r}, 'w').write('pwned')",
    "dot-dot": "import os\nrel = os.path.relpath({target!r})\nopen(rel, 'w').write('pwned')",
    "symlink": "import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('pwned')",
    "hard-link": "import os\nos.link({target!r}, 'hard')\nopen('hard', 'w').write('pwned')",
    "append": "open({target!r}, 'a').write('pwned')",
    "truncate": "import os\nos.truncate({target!r}, 0)",
    "delete": "import os\nos.remove({target!r})",
    "rename-over": "open('mine', 'w').write('pwned')\nimport os\nos.replace('mine', {target!r})",
    "rename-away": "import os\nos.rename({target!r}, 'stolen')",
    "new-file-beside": "open({target!r} + '.new', 'w').write('pwned')",
    "mkdir-beside": "import os\nos.mkdir({target!r} + '.d')",
    "shell": "import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned > ' + {target!r}], check=True)",
    "libc": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.open({target!r}.encode(), os.O_WRONLY | os.O_TRUNC)\n"
        "assert fd >= 0, os.strerror(ctypes.get_errno())\nlibc.write(fd, b'pwned', 5)"
    ),
}


@needs_landlock
@pytest.mark.parametrize("attack", list(WRITES))
def test_no_write_outside_the_working_directory(tmp_path, attack):
    target = tmp_path / "precious.txt"
    target.write_text("original")
    result = run_python(WRITES[attack].format(target=str(target)), timeout_s=10)
    assert not result.ok, f"{attack}: the write went through"
    assert target.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


@needs_landlock
def test_writes_inside_the_working_directory_and_dev_null_still_work():
    code = (
        "import os, subprocess\nos.mkdir('d')\nopen('d/f', 'w').write('x')\nos.rename('d/f', 'g')\n"
        "os.symlink('g', 'h')\nos.remove('h')\nsubprocess.run(['true'], stdout=subprocess.DEVNULL, check=True)\n"
        "open(os.devnull, 'w').write('x')\nprint(sorted(os.listdir('.')))"
    )
    result = run_python(code)
    assert result.ok, result.stderr
    assert result.stdout.strip() == "['d', 'g', 'main.py']"


METADATA = {
    "os.chmod": "import os\nos.chmod({target!r}, 0o777)",
    "os.chown": "import os\nos.chown({target!r}, 4242, 4242)",
    "os.lchown": "import os\nos.lchown({target!r}, 4242, 4242)",
    "os.fchmod": "import os\nfd = os.open({target!r}, os.O_RDONLY)\nos.fchmod(fd, 0o777)",
    "os.fchown": "import os\nfd = os.open({target!r}, os.O_RDONLY)\nos.fchown(fd, 4242, 4242)",
    "shutil.chown": "import shutil\nshutil.chown({target!r}, user=4242, group=4242)",
    "shutil.copymode": "import os, shutil\nopen('x', 'w').close()\nos.chmod('x', 0o777)\nshutil.copymode('x', {target!r})",
    "pathlib": "from pathlib import Path\nPath({target!r}).chmod(0o777)",
    "symlink": "import os\nos.symlink({target!r}, 'link')\nos.chmod('link', 0o777)",
    "directory": "import os\nos.chmod(os.path.dirname({target!r}), 0o777)",
    "utime": "import os\nos.utime({target!r}, (0, 0))",
    "shell": "import subprocess\nsubprocess.run(['chmod', '777', {target!r}], check=True)",
    "libc": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "rc = libc.chmod({target!r}.encode(), 0o777) or libc.chown({target!r}.encode(), 4242, 4242)\n"
        "assert rc == 0, os.strerror(ctypes.get_errno())"
    ),
    "remount-writable": (  # mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, clear MOUNT_ATTR_RDONLY), then chmod
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nL = ctypes.c_long\n"
        "attr = (ctypes.c_uint64 * 4)(0, 1, 0, 0)\n"
        "libc.syscall(L(442), L(-100), b'/', L(0x8000), ctypes.byref(attr), L(32))\nos.chmod({target!r}, 0o777)"
    ),
}


def _metadata(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns


@needs_private_mounts
@pytest.mark.parametrize("attack", list(METADATA))
def test_no_chmod_or_chown_outside_the_working_directory(tmp_path, attack):
    target = tmp_path / "precious.txt"
    target.write_text("original")
    target.chmod(0o600)
    before = _metadata(target), _metadata(tmp_path)
    result = run_python(METADATA[attack].format(target=str(target)), timeout_s=10)
    assert not result.ok, f"{attack}: the change went through"
    assert (_metadata(target), _metadata(tmp_path)) == before, attack


@needs_private_mounts
def test_chmod_inside_the_working_directory_still_works():
    code = (
        "import os, shutil, subprocess\nopen('run.sh', 'w').write('#!/bin/sh\\necho ran\\n')\n"
        "os.chmod('run.sh', 0o755)\nshutil.copy('run.sh', 'copy.sh')\nos.utime('copy.sh', (0, 0))\n"
        "subprocess.run(['./copy.sh'], check=True)\nprint(oct(os.stat('copy.sh').st_mode & 0o777))"
    )
    result = run_python(code)
    assert result.ok, result.stderr
    assert result.stdout.split() == ["ran", "0o755"]


@pytest.mark.skipif(landlock_abi() < 4, reason="Landlock network rules need ABI >= 4")
def test_network_through_libc_is_blocked_too(tcp_server, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sandbox, "network_isolation_available", lambda: False)  # no namespace: Landlock
    code = (
        "import ctypes, socket, struct, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.socket(2, 1, 0)\n"  # AF_INET, SOCK_STREAM: the socket module is blocked, libc is not
        f"addr = struct.pack('!HH4s8x', 2, {tcp_server}, bytes([127, 0, 0, 1]))\n"
        "addr = struct.pack('=H', 2) + addr[2:]\n"
        "rc = libc.connect(fd, addr, len(addr))\n"
        "raise OSError(ctypes.get_errno(), 'connect: ' + os.strerror(ctypes.get_errno())) if rc else print('in')\n"
    )
    result = run_python(code, timeout_s=5)
    assert not result.ok and "in" not in result.stdout.split()
    assert "Errno 13" in result.summary() or NETWORK_ERROR.search(result.summary()), result.stderr


@pytest.mark.skipif(landlock_abi() < 6, reason="Landlock signal scoping needs ABI >= 6")
def test_cannot_signal_processes_outside():
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        code = f"import os, signal\nos.kill({bystander.pid}, signal.SIGKILL)"
        result = run_python(code)
        assert not result.ok and "PermissionError" in result.stderr
        parent = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
        assert not parent.ok and "PermissionError" in parent.stderr
        time.sleep(0.2)
        assert bystander.poll() is None, "a process outside the sandbox was killed"
    finally:
        bystander.kill()
        bystander.wait()


@needs_cgroups
def test_a_child_that_leaves_the_process_group_dies_with_the_run():
    code = (
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        print(os.getpid(), flush=True)\n        time.sleep(60)\n    os._exit(0)\n"
        "time.sleep(0.5)\n"
    )
    result = run_python(code, timeout_s=10)
    assert result.ok, result.stderr
    pid = int(result.stdout.split()[0])
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("a daemonised child outlived the run")


@pytest.mark.skipif(not process_cap, reason="nothing would cap a fork bomb here (root without cgroups)")
def test_fork_bomb_is_capped_and_cleaned_up():
    counted = run_python(
        "import os, time\nn = 0\ntry:\n    while n < 10_000:\n        if os.fork() == 0:\n"
        "            time.sleep(20)\n            os._exit(0)\n        n += 1\n"
        "except OSError as e:\n    print('capped after', n, e.errno)\n",
        timeout_s=10,
    )
    assert counted.ok and counted.stdout.startswith("capped after"), counted
    assert int(counted.stdout.split()[2]) < 200
    start = time.monotonic()
    bomb = run_python(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        timeout_s=2,
    )
    assert bomb.timed_out and time.monotonic() - start < 10
    assert not _leftovers("memrl-sandbox-"), "processes of a finished run are still alive"


@needs_cgroups
def test_memory_of_all_processes_together_is_capped():
    code = (
        "import os\npids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
        "        b = bytearray(150 << 20)\n        for i in range(0, len(b), 4096):\n            b[i] = 1\n"
        "        os._exit(0)\n    pids.append(pid)\n"
        "print([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids])\n"
    )
    result = run_python(code, timeout_s=20, memory_mb=256)
    # 4 x 150 MB fit each process's own 256 MB, not the run's 256 + 64 MB together: some are killed.
    assert not result.ok or "-9" in result.stdout, result


def test_disk_flood_in_the_working_directory_is_cut():
    result = run_python("with open('big', 'wb') as f:\n    f.write(b'x' * (20 << 20))\n")
    assert not result.ok and ("File too large" in result.stderr or result.returncode == -signal.SIGXFSZ)


def test_allocation_in_a_loop_and_in_one_go_fail():
    grow = run_python(
        "xs = []\nwhile True:\n    xs.append(bytearray(8 << 20))\n", memory_mb=200, timeout_s=20
    )
    assert not grow.ok and "MemoryError" in grow.stderr and not grow.timed_out
    huge = run_python("b = b'x' * (4 << 30)\n", memory_mb=200)
    assert not huge.ok and "MemoryError" in huge.stderr


def test_a_loop_that_ignores_signals_still_times_out():
    code = "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n"
    start = time.monotonic()
    result = run_python(code, timeout_s=1.5)
    assert result.timed_out and time.monotonic() - start < 6


def test_no_secret_of_the_parent_reaches_the_child(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret-123")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())")
    assert result.ok and "sk-parent-secret-123" not in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout
