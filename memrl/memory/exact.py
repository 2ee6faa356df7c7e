"""Exact cosine search over a collection's rows held in process memory, for collections small enough that a
matrix product beats an HNSW lookup (measured in `bench/bench_memory.py --curve`).

A cache entry is keyed by (location, collection name), dropped by every write memrl makes through any index
on that key in this process, and checked against the collection's row count on each query, so rows added or
deleted by someone else are noticed too. Only embedded chroma directories use it: chroma's PersistentClient
is meant for one process, so an in-place update from another process is outside what it supports anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from memrl.memory.base import Row

__all__ = ["ExactRows", "cached", "drop", "top_k"]


@dataclass
class ExactRows:
    """A collection's rows: ids, unit-normalised vectors (float32), the raw vectors, documents, metadatas."""

    ids: list[str]
    unit: np.ndarray
    raw: np.ndarray
    documents: list[str]
    metadatas: list[dict[str, Any]]


_CACHE: dict[tuple[str, str], ExactRows] = {}
_LOCK = threading.Lock()


def drop(key: tuple[str, str]) -> None:
    with _LOCK:
        _CACHE.pop(key, None)


def cached(key: tuple[str, str], count: int, load: Any) -> ExactRows:
    """The cached rows of `key` if they still number `count`, else `load()` (a full read) cached."""
    with _LOCK:
        rows = _CACHE.get(key)
    if rows is not None and len(rows.ids) == count:
        return rows
    res = load()
    raw = np.asarray(res["embeddings"], dtype=np.float32).reshape(len(res["ids"]), -1)
    unit = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    rows = ExactRows(
        list(res["ids"]), unit, raw, list(res["documents"]), [dict(m or {}) for m in res["metadatas"]]
    )
    with _LOCK:
        _CACHE[key] = rows
    return rows


def top_k(rows: ExactRows, embedding: list[float], k: int, include_embeddings: bool) -> list[Row]:
    """The true top-k rows by cosine similarity, best first."""
    n = len(rows.ids)
    k = min(k, n)
    if k <= 0:
        return []
    q = np.asarray(embedding, dtype=np.float32)
    sims = rows.unit @ (q / max(float(np.linalg.norm(q)), 1e-12))
    top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
    top = top[np.argsort(-sims[top], kind="stable")]
    return [
        Row(
            id=rows.ids[i],
            document=rows.documents[i],
            metadata=dict(rows.metadatas[i]),
            embedding=[float(x) for x in rows.raw[i]] if include_embeddings else None,
            similarity=float(sims[i]),
        )
        for i in top
    ]
