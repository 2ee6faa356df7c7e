"""Pick a relevant and diverse subset to inject: greedy DPP MAP (Chen et al. NeurIPS 2018) and MMR.

Both take an n×n similarity matrix S and a relevance vector q, and return indices in the order picked.
Vectors: reference/ENTROPY.md (D1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dpp_kernel", "dpp_log_det", "greedy_dpp_map", "mmr_select"]


def _check(similarity: ArrayLike, relevance: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = np.asarray(similarity, dtype=np.float64)
    q = np.asarray(relevance, dtype=np.float64).ravel()
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] != q.size:
        raise ValueError(f"similarity {s.shape} must be n×n with n = len(relevance) = {q.size}")
    return s, q


def dpp_kernel(similarity: ArrayLike, relevance: ArrayLike) -> NDArray[np.float64]:
    """The quality–diversity kernel L = diag(q)·S·diag(q)."""
    s, q = _check(similarity, relevance)
    return q[:, None] * s * q[None, :]


def dpp_log_det(similarity: ArrayLike, relevance: ArrayLike, subset: Sequence[int]) -> float:
    """log det(L_S) of the subset (−inf when L_S is singular)."""
    sub = list(subset)
    sign, logdet = np.linalg.slogdet(dpp_kernel(similarity, relevance)[np.ix_(sub, sub)])
    return float(logdet) if sign > 0 else float("-inf")


def greedy_dpp_map(similarity: ArrayLike, relevance: ArrayLike, k: int, eps: float = 1e-10) -> list[int]:
    """Greedy MAP inference for a DPP: repeatedly add the item that most increases log det(L_S).

    Incremental Cholesky (Chen et al. 2018), O(n·k²). Stops early when no remaining item adds volume
    (its conditional variance is ≤ ``eps``), so the result can be shorter than k.
    """
    L = dpp_kernel(similarity, relevance)
    n = L.shape[0]
    k = min(k, n)
    if k <= 0:
        return []
    rows = np.zeros((k, n))
    gain = np.diag(L).copy()  # conditional variance d_i² of each item given the picked ones
    picked: list[int] = []
    j = int(np.argmax(gain))
    while gain[j] > eps:
        picked.append(j)
        if len(picked) == k:
            break
        t = len(picked) - 1
        e = (L[j] - rows[:t, j] @ rows[:t]) / np.sqrt(gain[j])
        rows[t] = e
        gain = gain - e**2
        gain[picked] = -np.inf
        j = int(np.argmax(gain))
    return picked


def mmr_select(similarity: ArrayLike, relevance: ArrayLike, k: int, lam: float = 0.5) -> list[int]:
    """Maximal marginal relevance: repeatedly pick ``argmax λ·rel(i) − (1−λ)·max_{s∈S} sim(i, s)``.

    The first pick is the most relevant item (the max over an empty set counts as 0); ties go to the
    lower index. λ = 1 ranks by relevance alone, λ = 0 by novelty alone.
    """
    if not 0 <= lam <= 1:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    s, q = _check(similarity, relevance)
    n = q.size
    picked: list[int] = []
    closest = np.zeros(n)  # max similarity of each item to the picked set
    free = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        score = np.where(free, lam * q - (1 - lam) * closest, -np.inf)
        j = int(np.argmax(score))
        picked.append(j)
        free[j] = False
        closest = np.maximum(closest, s[j]) if len(picked) > 1 else s[j].copy()
    return picked
