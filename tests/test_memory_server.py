"""Memory on a real chroma server (`chroma run`, started here on a free loopback port) shared by processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from memrl.errors import ConfigError
from memrl.memory import CaseRecord, HashEmbedder, LessonRecord, memory_stats, open_memory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        chroma = Path(shutil.which("chroma") or "chroma")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(
                f"chroma server did not start: {(data / 'server.log').read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_server_store_operations(chroma_url):
    mem = open_memory(chroma_url, embedder=HashEmbedder(64), namespace="ops")
    lib = mem.experience
    lib.add([LessonRecord(id="a", text="check units"), LessonRecord(id="b", text="simplify fractions first")])
    assert lib.query("fractions", k=1)[0].record.id == "b"
    assert len(lib.query("fractions", k=10)) == 2
    lib.update("a", text="draw a diagram", status="retired")
    again = open_memory(chroma_url, embedder=HashEmbedder(64), namespace="ops")  # a second client sees it
    assert again.experience.get("a").text == "draw a diagram"
    assert again.experience.count(where={"status": "active"}) == 1
    again.experience.delete(["b"])
    assert lib.count() == 1
    with pytest.raises(ConfigError, match="cannot be mixed"):
        open_memory(chroma_url, embedder=HashEmbedder(16), namespace="ops")


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from memrl.memory import CaseRecord, HashEmbedder, open_memory
    url, tag, n, sync = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    cases = open_memory(url, embedder=HashEmbedder(64), namespace="shared").cases
    (sync / f"ready-{tag}").touch()
    while not (sync / "go").exists():  # start writing together with the other process
        time.sleep(0.01)
    for start in range(0, n, 5):
        cases.add([CaseRecord(id=f"{tag}-{i}", task=f"task {i} from {tag}", reward=i % 2) for i in range(start, start + 5)])
    """
)


def test_two_processes_writing_at_once_lose_nothing(chroma_url, tmp_path):
    n = 150
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, chroma_url, tag, str(n), str(tmp_path)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for tag in ("p1", "p2")
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{t}").exists() for t in ("p1", "p2")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "writers did not start"
        time.sleep(0.02)
    (tmp_path / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    cases = open_memory(chroma_url, embedder=HashEmbedder(64), namespace="shared").cases
    assert cases.count() == 2 * n
    ids = {r.id for r in cases.all()}
    assert ids == {f"{tag}-{i}" for tag in ("p1", "p2") for i in range(n)}
    assert cases.count(where={"reward": 1.0}) == n
    assert cases.get("p2-149").task == "task 149 from p2"


def test_stats_over_the_server(chroma_url):
    mem = open_memory(chroma_url, embedder=HashEmbedder(64), namespace="stats")
    mem.cases.add([CaseRecord(task="x" * 40)])
    stats = memory_stats(chroma_url)
    assert stats.disk_bytes is None
    cases = next(s for s in stats.stores if s.namespace == "stats" and s.kind == "cases")
    assert (
        cases.count == 1
        and cases.text_bytes == 40
        and cases.approx_tokens == 10
        and cases.vector_bytes == 256
    )


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(ConfigError, match="chroma run"):
        open_memory(f"http://127.0.0.1:{_free_port()}", embedder=HashEmbedder(8))
