"""A sqlite response cache keyed by the full request, so a re-run or a resume re-spends nothing.

Each sample of an n-sample request is its own entry (key = request + sample index), so n samples stay
distinct while every one of them is replayed exactly. Entries are committed as they arrive: a run killed
mid-step finds every answer it already paid for.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from functools import partial
from pathlib import Path

from memrl.llm.base import Request
from memrl.types import Completion

__all__ = ["ResponseCache", "cache_key", "cache_keys"]


def cache_keys(model: str, request: Request, n: int, salt: str = "") -> list[str]:
    """The keys of samples 0..n-1: sha256 of the canonical JSON of {model, request, salt, sample}.

    The request is serialised and hashed once; each sample only adds its index to a copy of the hash.
    The bytes hashed are exactly those of `json.dumps(payload, sort_keys=True, separators=(",", ":"))`,
    so keys stay the same across versions and old caches keep answering.
    """
    dump = partial(json.dumps, sort_keys=True, separators=(",", ":"))
    head = (
        f'{{"model":{dump(model)},"request":{dump(request.model_dump(mode="json"))},'
        f'"salt":{dump(salt)},"sample":'
    )
    base = hashlib.sha256(head.encode())
    keys = []
    for i in range(n):
        h = base.copy()
        h.update(f"{i}}}".encode())
        keys.append(h.hexdigest())
    return keys


def cache_key(model: str, request: Request, sample: int, salt: str = "") -> str:
    payload = {"model": model, "request": request.model_dump(mode="json"), "sample": sample, "salt": salt}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ResponseCache:
    """Thread-safe, process-safe (sqlite WAL) map from cache keys to completions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, value TEXT, created REAL)"
        )

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        """The cached completions among `keys`, in one query."""
        rows: list[tuple[str, str]] = []
        for at in range(0, len(keys), 500):  # under sqlite's bound on query parameters
            chunk = keys[at : at + 500]
            sql = f"SELECT key, value FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
            with self._lock:
                rows += self._db.execute(sql, chunk).fetchall()
        return {k: Completion.model_validate_json(v) for k, v in rows}

    def put(self, key: str, model: str, completion: Completion) -> None:
        value = completion.model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model, value, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
