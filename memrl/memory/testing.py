"""Test doubles for the memory layer: a deterministic hash embedder and an in-memory vector backend.

Both need nothing beyond numpy. `open_memory(":memory:", embedder=HashEmbedder())` gives four working stores
with the same behaviour as the chroma ones (filters included), for tests of code that uses memory.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from memrl.errors import ConfigError
from memrl.memory.base import Embedder, Row, Where

__all__ = ["HashEmbedder", "InMemoryBackend", "InMemoryIndex", "matches"]

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of hashed words and word bigrams, signed, L2-normalised. Same text, same vector, in every process."""

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ValueError("HashEmbedder needs dim >= 2")
        self.dim = dim

    @property
    def name(self) -> str:
        return f"hash-{self.dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        feats = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        v = np.zeros(self.dim, dtype=np.float64)
        for f in feats or [""]:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n > 0 else np.eye(self.dim)[0]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t).tolist() for t in texts]


_OPS = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$in": lambda a, b: a in b,
    "$nin": lambda a, b: a not in b,
}


def matches(meta: dict[str, Any], where: Where | None) -> bool:
    """Whether flat metadata satisfies a chroma-style `where` filter."""
    if not where:
        return True
    for key, cond in where.items():
        if key == "$and":
            ok = all(matches(meta, w) for w in cond)
        elif key == "$or":
            ok = any(matches(meta, w) for w in cond)
        elif key not in meta:
            ok = False
        elif isinstance(cond, dict):
            ok = all(_OPS[op](meta[key], val) for op, val in cond.items())
        else:
            ok = meta[key] == cond
        if not ok:
            return False
    return True


class InMemoryIndex:
    """A `VectorIndex` in process memory: brute-force cosine search."""

    def __init__(self, name: str, metadata: dict[str, Any]) -> None:
        self.name, self.metadata = name, metadata
        self._rows: dict[str, Row] = {}

    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        for i, e, d, m in zip(ids, embeddings, documents, metadatas, strict=True):
            self._rows[i] = Row(i, d, dict(m), list(e))

    def insert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        for i, e, d, m in zip(ids, embeddings, documents, metadatas, strict=True):
            self._rows.setdefault(i, Row(i, d, dict(m), list(e)))

    def _copy(self, row: Row, emb: bool, sim: float | None = None) -> Row:
        return Row(row.id, row.document, dict(row.metadata), list(row.embedding or []) if emb else None, sim)

    def get(
        self, ids: list[str] | None = None, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]:
        rows = self._rows.values() if ids is None else [self._rows[i] for i in ids if i in self._rows]
        return [self._copy(r, include_embeddings) for r in rows if matches(r.metadata, where)]

    def query(
        self, embedding: list[float], k: int, where: Where | None = None, include_embeddings: bool = False
    ) -> list[Row]:
        rows = [r for r in self._rows.values() if matches(r.metadata, where)]
        if not rows or k <= 0:
            return []
        mat = np.array([r.embedding for r in rows], dtype=np.float64)
        q = np.asarray(embedding, dtype=np.float64)
        sims = mat @ q / np.maximum(np.linalg.norm(mat, axis=1) * np.linalg.norm(q), 1e-12)
        top = np.argsort(-sims, kind="stable")[:k]
        return [self._copy(rows[i], include_embeddings, float(sims[i])) for i in top]

    def delete(self, ids: list[str]) -> None:
        for i in ids:
            self._rows.pop(i, None)

    def count(self) -> int:
        return len(self._rows)


class InMemoryBackend:
    """A `VectorBackend` whose indexes live as long as the object. Checks embedders like the chroma one."""

    location = ":memory:"

    def __init__(self) -> None:
        self._indexes: dict[str, InMemoryIndex] = {}

    def open_index(self, name: str, embedder: Embedder) -> InMemoryIndex:
        meta = {"memrl_embedder": embedder.name, "memrl_dim": embedder.dim, "memrl_schema": 1}
        index = self._indexes.setdefault(name, InMemoryIndex(name, meta))
        if index.metadata["memrl_embedder"] != embedder.name:
            raise ConfigError(
                f"memory index {name!r} holds vectors of embedder {index.metadata['memrl_embedder']!r}, "
                f"opened with {embedder.name!r}; vectors of two models cannot be mixed"
            )
        return index

    def existing_index(self, name: str) -> InMemoryIndex:
        if name not in self._indexes:
            raise ConfigError(f"no memory index {name!r} in memory")
        return self._indexes[name]

    def index_names(self) -> list[str]:
        return sorted(self._indexes)

    def drop_index(self, name: str) -> None:
        self._indexes.pop(name, None)
