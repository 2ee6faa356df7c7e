"""Vendi score: the effective number of distinct items in a set (Friedman & Dieng 2022).

``VS_q = exp(H_q(λ))`` with λ the eigenvalues of K/n, K a PSD similarity matrix with K_ii = 1 (for example
the cosine similarity of embeddings) and H_q the Rényi entropy of order q (q = 1: Shannon). 1 ≤ VS ≤ n:
n identical items score 1, n orthogonal ones score n. Vectors: reference/ENTROPY.md (V1, V2).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from memrl.diversity.measures import cosine_similarity

__all__ = ["vendi_score", "vendi_score_from_embeddings", "vendi_from_eigenvalues"]


def vendi_from_eigenvalues(eigenvalues: ArrayLike, q: float = 1.0) -> float:
    """Vendi score of order q from eigenvalues that sum to 1 (tiny negative ones from round-off are dropped)."""
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    lam = lam[lam > 1e-12]
    if lam.size == 0:
        raise ValueError("the similarity matrix has no positive eigenvalue")
    lam = lam / lam.sum()
    if q < 0:
        raise ValueError(f"order q must be ≥ 0, got {q}")
    if q == 1:
        return float(math.exp(-(lam * np.log(lam)).sum()))
    if math.isinf(q):
        return float(1.0 / lam.max())
    return float(math.exp(math.log((lam**q).sum()) / (1.0 - q)))


def vendi_score(similarity: ArrayLike, q: float = 1.0) -> float:
    """Vendi score of order ``q`` of an n×n PSD similarity matrix with unit diagonal."""
    k = np.asarray(similarity, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] == 0:
        raise ValueError(f"similarity must be a non-empty square matrix, got shape {k.shape}")
    if not np.allclose(k, k.T, atol=1e-8):
        raise ValueError("similarity must be symmetric")
    return vendi_from_eigenvalues(np.linalg.eigvalsh(k / k.shape[0]), q)


def vendi_score_from_embeddings(embeddings: ArrayLike, q: float = 1.0) -> float:
    """Vendi score of the cosine similarity of the rows of ``embeddings`` (n × d).

    When n > d it works on the d × d matrix XᵀX/n, which has the same non-zero eigenvalues as XXᵀ/n.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty n × d matrix, got shape {x.shape}")
    n, d = x.shape
    if n <= d:
        return vendi_score(cosine_similarity(x), q)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("an embedding is the zero vector; cosine similarity is undefined")
    xn = x / norms
    return vendi_from_eigenvalues(np.linalg.eigvalsh(xn.T @ xn / n), q)
