"""Sample-level diversity measures: cosine similarity, redundancy, distinct-n and unbiased pass@k.

Vectors: reference/ENTROPY.md (P2, P3). Pure numpy/stdlib over lists and arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from memrl.metrics import pass_at_k  # one definition; re-exported here with the other set measures

__all__ = ["cosine_similarity", "redundant_pairs", "redundancy", "distinct_n", "pass_at_k"]


def cosine_similarity(x: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float64]:
    """Cosine similarity between the rows of ``x`` and of ``y`` (``x`` with itself when ``y`` is None)."""
    a = np.atleast_2d(np.asarray(x, dtype=np.float64))
    b = a if y is None else np.atleast_2d(np.asarray(y, dtype=np.float64))
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("a vector is zero; cosine similarity is undefined")
    s = (a / na[:, None]) @ (b / nb[:, None]).T
    if y is None:
        np.fill_diagonal(s, 1.0)
    return np.clip(s, -1.0, 1.0)


def redundant_pairs(similarity: ArrayLike, threshold: float = 0.9) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, i < j, whose similarity is at least ``threshold`` (near-duplicates)."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be square, got shape {s.shape}")
    i, j = np.nonzero(np.triu(s >= threshold, k=1))
    return [(int(a), int(b)) for a, b in zip(i, j, strict=True)]


def redundancy(similarity: ArrayLike, threshold: float = 0.9) -> float:
    """Fraction of the n(n−1)/2 pairs whose similarity is at least ``threshold`` (0 when n < 2)."""
    n = np.asarray(similarity).shape[0]
    pairs = n * (n - 1) // 2
    return len(redundant_pairs(similarity, threshold)) / pairs if pairs else 0.0


def distinct_n(texts: Sequence[str], n: int = 1) -> float:
    """Distinct-n: unique n-grams / all n-grams over whitespace tokens of all texts (0 if there are none)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    grams: list[tuple[str, ...]] = []
    for text in texts:
        toks = text.split()
        grams.extend(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0
