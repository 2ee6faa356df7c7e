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
from pathlib import Path

from memrl.llm.base import Request
from memrl.types import Completion

__all__ = ["ResponseCache", "cache_key"]


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
