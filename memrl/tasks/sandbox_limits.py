"""Kernel confinement for the Python sandbox (memrl.tasks.sandbox), where the kernel offers it.

- **Landlock** (Linux ≥ 5.13, unprivileged): the child may write, create, rename or delete files only
  inside its working directory (and write /dev/null); with Landlock ABI ≥ 4 it can neither connect nor
  bind TCP sockets; with ABI ≥ 6 it can signal no process outside the sandbox and reach no abstract
  UNIX socket outside it. Inherited by every process the child starts.
- **a mount namespace of the run's own** (root, or any user where the kernel allows user namespaces):
  every mount is read-only in it but the working directory, so what Landlock does not cover (chmod,
  chown, utime, extended attributes) fails outside that directory with EROFS, through Python, libc or a
  shell alike. Made before Landlock, which then forbids the child to change mounts.
- **cgroups** (root, or a delegated hierarchy): a fresh cgroup per run caps the number of processes
  (a fork bomb stops there, root included, whom RLIMIT_NPROC does not bind) and the memory of all of
  them together, and lets the parent kill every process of the run, even those that left its process
  group with setsid().

Where neither is available the sandbox still has its rlimits and socket block (see sandbox.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "CHILD_CONFINE",
    "RunCgroup",
    "cgroups_available",
    "landlock_abi",
    "private_mounts_available",
    "user_task_count",
]

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = libc.syscall(
            ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_long(0), ctypes.c_long(1)
        )
    except (OSError, AttributeError):
        return 0
    return max(0, int(abi))


# Runs in the child before the user's code (inside the bootstrap of sandbox.py). It must not raise: a
# kernel without Landlock or namespaces keeps the other limits.
CHILD_CONFINE = r"""
def _private_mounts(work):
    import ctypes, os
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        L = ctypes.c_long
        if libc.unshare(0x20000) != 0:  # CLONE_NEWNS, which needs CAP_SYS_ADMIN: else in a user namespace
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(0x10000000 | 0x20000) != 0:
                return False
            for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        # Nothing done here may reach the parent's mounts: make every mount private first.
        if libc.mount(None, b"/", None, L(0x4000 | 0x40000), None) != 0:  # MS_REC | MS_PRIVATE
            return False
        w = os.fsencode(work)
        if libc.mount(w, w, None, L(0x1000 | 0x4000), None) != 0:  # MS_BIND | MS_REC: a mount of its own
            return False
        sc = libc.syscall
        sc.restype = L

        def read_only(path, on):  # mount_setattr(AT_FDCWD, path, AT_RECURSIVE, MOUNT_ATTR_RDONLY)
            attr = (ctypes.c_uint64 * 4)(1 if on else 0, 0 if on else 1, 0, 0)
            return sc(L(442), L(-100), path, L(0x8000), ctypes.byref(attr), L(32)) == 0

        if not read_only(b"/", True):
            return False
        if not read_only(w, False):
            read_only(b"/", False)
            return False
        os.chdir(work)  # the old working directory lies beneath the new mount, read-only
        # Without CAP_SYS_ADMIN (now and after exec) the child cannot make the mounts writable again.
        libc.prctl(L(24), L(21), L(0), L(0), L(0))  # PR_CAPBSET_DROP, CAP_SYS_ADMIN
        head, caps = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
        if libc.capget(ctypes.byref(head), ctypes.byref(caps)) == 0:
            for i in range(3):  # effective, permitted, inheritable (bits 0-31)
                caps[i] &= ~(1 << 21)
            libc.capset(ctypes.byref(head), ctypes.byref(caps))
        return True
    except Exception:
        return False


def _confine(work):
    import ctypes, os
    _private_mounts(work)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sc = libc.syscall
        sc.restype = ctypes.c_long
        L = ctypes.c_long
        abi = sc(L(444), None, L(0), L(1))
        if abi < 1:
            return
        fs = 0
        for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12):  # write, remove, make char/dir/reg/sock/fifo/block/sym
            fs |= 1 << bit
        if abi >= 2:
            fs |= 1 << 13  # refer: no links or renames across the boundary
        if abi >= 3:
            fs |= 1 << 14  # truncate
        net = 3 if abi >= 4 else 0  # bind and connect TCP
        scoped = 3 if abi >= 6 else 0  # abstract UNIX sockets and signals outside the sandbox
        attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
        size = 24 if abi >= 6 else 16 if abi >= 4 else 8
        rules = sc(L(444), ctypes.byref(attr), L(size), L(0))
        if rules < 0:
            return

        class PathBeneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        dev_null = (1 << 1) | ((1 << 14) if abi >= 3 else 0)
        for path, allowed in ((work, fs), ("/dev/null", dev_null)):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            sc(L(445), L(rules), L(1), ctypes.byref(PathBeneath(allowed, fd)), L(0))
            os.close(fd)
        libc.prctl(L(38), L(1), L(0), L(0), L(0))  # no_new_privs, which Landlock requires
        sc(L(446), L(rules), L(0))
        os.close(rules)
    except Exception:
        pass
"""


def _own_path(controller: str) -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and not names):
            return path
    return None


def _hierarchies() -> dict[str, Path]:
    """Where this process's cgroup is for the pids and memory controllers (v1 or the unified v2)."""
    found: dict[str, Path] = {}
    v2: Path | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        sep = parts.index("-")
        fstype, mount, options = parts[sep + 1], parts[4], parts[sep + 3].split(",")
        for c in ("pids", "memory"):
            own = _own_path(c)
            if fstype == "cgroup" and c in options and own is not None:
                found[c] = Path(mount + own)
        if fstype == "cgroup2" and (own := _own_path("")) is not None:
            v2 = Path(mount + own)
    if v2 is not None:
        try:
            enabled = (v2 / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        for c in ("pids", "memory"):
            if c not in found and c in enabled:
                found[c] = v2
    return found


class RunCgroup:
    """One run's cgroup(s): a process cap and a memory cap, joined by the child itself."""

    def __init__(self, max_procs: int, memory_bytes: int) -> None:
        self.dirs: list[Path] = []
        name = f"memrl-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            for base in _hierarchies().values():
                d = base / name
                if d in self.dirs:
                    continue
                d.mkdir()
                self.dirs.append(d)
            for d in self.dirs:
                for fname, value in (
                    ("pids.max", max_procs),
                    ("memory.max", memory_bytes),
                    ("memory.limit_in_bytes", memory_bytes),
                ):
                    if (d / fname).exists():
                        (d / fname).write_text(str(value))
        except OSError:
            self.remove()
            self.dirs = []

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def kill_all(self, wait_s: float = 2.0) -> None:
        """SIGKILL every process still in the run's cgroup, and wait until it is empty."""
        deadline = time.monotonic() + wait_s
        for d in self.dirs:
            while time.monotonic() < deadline:
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the last process of the run is reaped
                    time.sleep(0.02)


@functools.lru_cache(maxsize=1)
def cgroups_available() -> bool:
    """Whether a run can get its own cgroup with a process cap here."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        probe = RunCgroup(max_procs=8, memory_bytes=64 << 20)
    except OSError:
        return False
    ok = any((d / "pids.max").exists() for d in probe.dirs)
    probe.remove()
    return ok


@functools.lru_cache(maxsize=1)
def private_mounts_available() -> bool:
    """Whether a run gets a mount namespace where all but its working directory is read-only."""
    if not sys.platform.startswith("linux"):
        return False
    probe = CHILD_CONFINE + "import sys\nsys.exit(0 if _private_mounts(sys.argv[1]) else 1)\n"
    with tempfile.TemporaryDirectory(prefix="memrl-sandbox-probe-") as work:
        try:
            done = subprocess.run([sys.executable, "-I", "-c", probe, work], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0


def user_task_count() -> int:
    """Tasks (threads) of this real uid: RLIMIT_NPROC counts them all, not only the sandbox's."""
    uid = os.getuid()
    n = 0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if p.stat().st_uid == uid:
                n += sum(1 for _ in (p / "task").iterdir())
        except OSError:
            continue
    return n
