"""Two processes learning into one shared lesson store at once lose nothing (issue 19 / 16).

Each child process runs a `MemoryPolicy` in store mode on the same chroma server (or directory), with a
scripted learner that proposes one distinct lesson per learning group, and learns N times while the other
does the same. Afterwards every lesson of both is in the store under its own id, and each counter's total is
the sum of both processes' increments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from test_memory_server import chroma_url  # noqa: F401 - the module-scoped server fixture

from memrl import MemoryPolicy
from memrl.errors import ConfigError
from memrl.library.store import ChromaLibraryStore
from memrl.memory import HashEmbedder, open_memory

N = 8
TAGS = ("p1", "p2")

CHILD = textwrap.dedent(
    """
    import hashlib, json, re, sys, time
    from collections import Counter
    from pathlib import Path
    from memrl import MemoryPolicy
    from memrl.memory import HashEmbedder, open_memory
    from memrl.testing import ScriptedLLM

    loc, ns, tag, n, sync = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])

    def lesson(topic):  # distinct words per topic, so no two lessons look alike to the embedder
        words = [hashlib.sha1(f"{topic}-{k}".encode()).hexdigest()[:7] for k in range(6)]
        return f"When solving {topic} problems, remember " + " ".join(words)

    def reply(req):
        user = req.messages[-1].content
        if "Summarise the attempt" in user:
            return "The attempt answered directly."
        props = (req.json_schema or {}).get("properties", {})
        if "verdicts" in props:
            return json.dumps({"verdicts": ["different"] * user.count("Pair ")})
        if "lessons" in props:
            return json.dumps({"lessons": [lesson(re.search(r"Problem:\\s*(\\w+)", user).group(1).lower())]})
        return json.dumps({"operations": [{"op": "ADD", "content": t} for t in re.findall(r"^- (When .*)$", user, re.M)]})

    memory = open_memory(loc, embedder=HashEmbedder(64), namespace=ns)
    policy = MemoryPolicy.load(memory, learner=ScriptedLLM(default=reply, name="learner"), max_cases=0, refresh_s=0)
    (sync / f"ready-{tag}").touch()
    while not (sync / "go").exists():
        time.sleep(0.01)
    counts, added = Counter(), []
    for i in range(n):
        query = f"{tag}q{i}: what is {i} + 1?"
        for reward in (1.0, 0.0):
            shown = policy.memory(query).lessons
            policy.record(query, str(i + 1 - int(reward == 0)), reward)
            for lid in shown:
                counts[f"{lid} {'helpful' if reward else 'harmful'}"] += 1
                counts[f"{lid} uses"] += 1
        result = policy.learn()
        added.append(lesson(f"{tag}q{i}"))
        assert result.ops.get("ADD") == 1, result
    (sync / f"result-{tag}.json").write_text(json.dumps({"counts": counts, "added": added}))
    """
)


def _run_two(loc: str, ns: str, sync: Path) -> list[dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, loc, ns, tag, str(N), str(sync)], env=env, stderr=subprocess.PIPE
        )
        for tag in TAGS
    ]
    deadline = time.monotonic() + 120
    while not all((sync / f"ready-{t}").exists() for t in TAGS):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            p.stderr.read().decode()[-3000:] for p in procs if p.poll() is not None
        ]
        time.sleep(0.02)
    (sync / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
    return [json.loads((sync / f"result-{t}.json").read_text()) for t in TAGS]


def _check(loc: str, ns: str, results: list[dict]) -> None:
    lib = MemoryPolicy.load(open_memory(loc, embedder=HashEmbedder(64), namespace=ns)).library
    texts = Counter(lesson.text for lesson in lib.lessons.values())
    wanted = [t for r in results for t in r["added"]]
    assert len(wanted) == 2 * N == len(set(wanted))
    missing = [t for t in wanted if t not in texts]
    assert not missing, f"{len(missing)} of {2 * N} lessons lost: {missing[:3]}"
    assert len(lib.lessons) == 2 * N and set(texts.values()) == {1}, "an id shared by two texts, or a copy"
    want = Counter()
    for r in results:
        want.update(r["counts"])
    for key, n in sorted(want.items()):
        lid, field = key.split()
        assert getattr(lib.lessons[lid], field) == n, (
            f"{lid}.{field}: {getattr(lib.lessons[lid], field)} != {n}"
        )
    assert want, "no lesson was ever shown: the test would prove nothing about counters"


def test_two_processes_learn_into_one_chroma_server(chroma_url, tmp_path):  # noqa: F811
    results = _run_two(chroma_url, "shared_learn", tmp_path)
    _check(chroma_url, "shared_learn", results)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from memrl.library.store import ChromaLibraryStore
    from memrl.memory import HashEmbedder, open_memory
    store = ChromaLibraryStore(open_memory(sys.argv[1], embedder=HashEmbedder(64)))
    store.new_id()  # the first write takes the directory
    (Path(sys.argv[2]) / "holding").touch()
    while not (Path(sys.argv[2]) / "release").exists():
        time.sleep(0.01)
    """
)


def test_an_embedded_directory_has_one_writing_process(tmp_path):
    """chroma's embedded client is not shared safely by processes (each misses the other's later writes), so
    a second process writing lessons into the same directory gets an error that says to run a server."""
    db = tmp_path / "db"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(tmp_path)], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "holding").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    store = ChromaLibraryStore(open_memory(db, embedder=HashEmbedder(64)))
    assert len(store.load()) == 0, "reading is allowed"
    with pytest.raises(ConfigError, match=r"another process is writing.*chroma run --path"):
        store.new_id()
    (tmp_path / "release").touch()
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert store.new_id() == "L0002", "the directory is free once the writer exits; L0001 stays its"
