"""Retrieval: top-k by similarity with a threshold and metadata filters, then optional MMR re-ranking.

Maximal Marginal Relevance (Carbonell & Goldstein, 1998) picks, one at a time, the candidate maximising
`λ · sim(query, c) − (1 − λ) · max sim(c, already picked)`: λ = 1 is plain top-k, lower λ trades relevance for
variety, so a prompt is not filled with near-copies of one lesson or case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from memrl.memory.base import Hit, RecordStore, Where
from memrl.memory.records import MemoryRecord

__all__ = ["mmr", "retrieve"]

R = TypeVar("R", bound=MemoryRecord)


def mmr(
    query_similarity: Sequence[float] | np.ndarray,
    candidates: Sequence[Sequence[float]] | np.ndarray,
    k: int,
    lambda_: float = 0.5,
) -> list[int]:
    """Indices of `k` candidates in MMR order.

    `query_similarity[i]` is candidate i's similarity to the query; `candidates` are their vectors (normalised
    here, so cosine is a dot product).
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"MMR lambda must be in [0, 1], got {lambda_}")
    rel = np.asarray(query_similarity, dtype=np.float64)
    n = len(rel)
    k = min(k, n)
    if k <= 0:
        return []
    vecs = np.asarray(candidates, dtype=np.float64)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    sim = vecs @ vecs.T
    chosen = [int(np.argmax(rel))]
    # max similarity of every candidate to the chosen set, kept up to date incrementally
    redundancy = sim[chosen[0]].copy()
    available = np.ones(n, dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < k:
        score = lambda_ * rel - (1.0 - lambda_) * redundancy
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, sim[best])
    return chosen


def retrieve(
    store: RecordStore[R],
    text: str,
    k: int = 5,
    *,
    where: Where | None = None,
    min_similarity: float | None = None,
    mmr_lambda: float | None = None,
    fetch_k: int | None = None,
) -> list[Hit[R]]:
    """The k best records for `text`: filtered by `where`, at least `min_similarity` similar, and, when
    `mmr_lambda` is given, re-ranked by MMR over the `fetch_k` (default 4·k) nearest candidates."""
    if k <= 0:
        return []
    if mmr_lambda is None:
        return store.query(text, k, where=where, min_similarity=min_similarity)
    pool = store.query(
        text, max(fetch_k or 4 * k, k), where=where, min_similarity=min_similarity, include_embeddings=True
    )
    if len(pool) <= 1:
        return pool[:k]
    order = mmr([h.similarity for h in pool], [h.embedding or [] for h in pool], k, mmr_lambda)
    return [pool[i] for i in order]
