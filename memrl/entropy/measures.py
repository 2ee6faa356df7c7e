"""Entropy measures over logits, token entropies and sampled answers. All values are in nats.

Definitions and test vectors: reference/ENTROPY.md. Everything here is pure numpy: no model, no I/O.

- token entropy from raw logits at a temperature (Cui et al. 2025, Eq. 5), and the two aggregations
  over a group of responses: seq-mean-token-mean (the default) and token-mean;
- forking tokens: the tokens whose entropy is in the top-ρ quantile of a batch (Wang et al. 2025);
- semantic entropy over clustered answers, discrete or likelihood-weighted (Kuhn et al. 2023);
- answer entropy of a group, plug-in and Miller–Madow;
- the entropy → reward law R = −a·exp(H) + b and its predicted ceiling b − a;
- bounds on the entropy from an API's top-k log-probabilities (see ``topk.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Aggregation",
    "answer_key",
    "token_entropy",
    "log_softmax",
    "seq_mean_token_mean",
    "token_mean",
    "policy_entropy",
    "forking_threshold",
    "forking_mask",
    "discrete_semantic_entropy",
    "semantic_entropy",
    "plugin_entropy",
    "miller_madow_entropy",
    "EntropyRewardFit",
    "fit_entropy_reward_law",
]

Aggregation = Literal["seq-mean-token-mean", "token-mean"]
FloatArray = NDArray[np.float64]


def _scaled(logits: ArrayLike, temperature: float) -> FloatArray:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError("logits need a non-empty last axis (the vocabulary)")
    return z / temperature


def log_softmax(logits: ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Log-probabilities over the last axis of ``logits / temperature``, computed stably."""
    z = _scaled(logits, temperature)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def token_entropy(logits: ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Entropy of softmax(z / T) over the last axis: ``logsumexp(z/T) − Σ softmax(z/T)·(z/T)``.

    ``logits`` may be one vocabulary row (returns a 0-d array) or any batch of rows ``(..., V)``.
    Entries of ``-inf`` (masked tokens) are allowed and contribute nothing.
    """
    z = _scaled(logits, temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=-1, keepdims=True)
    # Σ p·z with 0·(−inf) taken as 0.
    pz = np.where(e > 0, e * np.where(np.isfinite(z), z, 0.0), 0.0).sum(axis=-1, keepdims=True) / total
    h = np.log(total) - pz
    return np.maximum(h[..., 0], 0.0)


def _rows(entropies: Sequence[ArrayLike] | ArrayLike, mask: ArrayLike | None) -> list[FloatArray]:
    """Split entropies into one 1-d array per response, keeping only tokens where mask is true."""
    if mask is None:
        if isinstance(entropies, np.ndarray) and entropies.ndim == 2:
            return [np.asarray(r, dtype=np.float64) for r in entropies]
        return [np.asarray(r, dtype=np.float64).ravel() for r in entropies]  # type: ignore[union-attr]
    h = np.asarray(entropies, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if h.shape != m.shape or h.ndim != 2:
        raise ValueError(f"entropies {h.shape} and mask {m.shape} must be the same 2-d shape")
    return [row[keep] for row, keep in zip(h, m, strict=True)]


def seq_mean_token_mean(entropies: Sequence[ArrayLike] | ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean over responses of each response's mean token entropy (responses without tokens are skipped).

    ``entropies`` is a list of per-response token entropies (ragged is fine), or a 2-d array with a
    ``mask`` of the same shape marking response tokens (the prompt and padding masked out).
    """
    means = [float(r.mean()) for r in _rows(entropies, mask) if r.size]
    if not means:
        raise ValueError("no response tokens to average")
    return float(np.mean(means))


def token_mean(entropies: Sequence[ArrayLike] | ArrayLike, mask: ArrayLike | None = None) -> float:
    """Plain mean over all response tokens of all responses (long responses weigh more)."""
    rows = [r for r in _rows(entropies, mask) if r.size]
    if not rows:
        raise ValueError("no response tokens to average")
    return float(np.concatenate(rows).mean())


def policy_entropy(
    entropies: Sequence[ArrayLike] | ArrayLike,
    mask: ArrayLike | None = None,
    aggregation: Aggregation = "seq-mean-token-mean",
) -> float:
    """Policy entropy of a group of responses, aggregated as ``seq-mean-token-mean`` or ``token-mean``."""
    if aggregation == "seq-mean-token-mean":
        return seq_mean_token_mean(entropies, mask)
    if aggregation == "token-mean":
        return token_mean(entropies, mask)
    raise ValueError(f"unknown aggregation {aggregation!r}; use 'seq-mean-token-mean' or 'token-mean'")


def forking_threshold(
    entropies: Sequence[ArrayLike] | ArrayLike, mask: ArrayLike | None = None, rho: float = 0.2
) -> float:
    """τ = the (1 − ρ)-quantile (linear interpolation) of all valid token entropies pooled over the batch."""
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho}")
    rows = [r for r in _rows(entropies, mask) if r.size]
    if not rows:
        raise ValueError("no valid tokens to take a quantile of")
    return float(np.quantile(np.concatenate(rows), 1.0 - rho, method="linear"))


def forking_mask(
    entropies: Sequence[ArrayLike] | ArrayLike, mask: ArrayLike | None = None, rho: float = 0.2
) -> tuple[float, list[NDArray[np.bool_]]]:
    """Return τ and, per response, a boolean mask of its forking tokens (valid and ``H_t ≥ τ``).

    The masks have each response's full length (masked positions are False), so positions index the
    response's tokens directly. For a 2-d input, stack them with ``np.array(masks)``.
    """
    tau = forking_threshold(entropies, mask, rho)
    if mask is None:
        rows = _rows(entropies, None)
        return tau, [r >= tau for r in rows]
    h = np.asarray(entropies, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    return tau, list((h >= tau) & m)


def _entropy_of(p: FloatArray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def discrete_semantic_entropy(cluster_ids: Sequence[Hashable]) -> float:
    """Discrete semantic entropy ``−Σ_c (n_c/M)·log(n_c/M)`` over the answers' cluster ids."""
    if not len(cluster_ids):
        raise ValueError("no answers")
    counts = np.array(list(Counter(cluster_ids).values()), dtype=np.float64)
    return _entropy_of(counts / counts.sum())


def semantic_entropy(cluster_ids: Sequence[Hashable], mean_logliks: ArrayLike | None = None) -> float:
    """Semantic entropy over clustered answers; likelihood-weighted when ``mean_logliks`` is given.

    With mean token log-likelihoods ℓ̄_i, a cluster's probability is ``Σ_{i∈c} e^{ℓ̄_i} / Σ_j e^{ℓ̄_j}``;
    without them every answer counts once (the discrete estimate).
    """
    if mean_logliks is None:
        return discrete_semantic_entropy(cluster_ids)
    ll = np.asarray(mean_logliks, dtype=np.float64).ravel()
    if ll.size != len(cluster_ids) or ll.size == 0:
        raise ValueError(f"{len(cluster_ids)} cluster ids but {ll.size} log-likelihoods")
    w = np.exp(ll - ll.max())
    mass: dict[Hashable, float] = {}
    for c, wi in zip(cluster_ids, w, strict=True):
        mass[c] = mass.get(c, 0.0) + float(wi)
    p = np.array(list(mass.values()))
    return _entropy_of(p / p.sum())


def plugin_entropy(answers: Sequence[Hashable]) -> float:
    """Plug-in (maximum-likelihood) entropy of the empirical answer distribution of a group."""
    return discrete_semantic_entropy(answers)


def miller_madow_entropy(answers: Sequence[Hashable]) -> float:
    """Plug-in entropy plus the Miller–Madow bias correction ``(K − 1) / (2n)``, K distinct answers."""
    k = len(set(answers))
    return plugin_entropy(answers) + (k - 1) / (2 * len(answers))


@dataclass(frozen=True)
class EntropyRewardFit:
    """A fitted law ``R = −a·exp(H) + b``; ``ceiling`` = b − a is the predicted reward at H = 0."""

    a: float
    b: float
    r2: float

    @property
    def ceiling(self) -> float:
        return self.b - self.a

    def predict(self, entropy: ArrayLike) -> FloatArray:
        return -self.a * np.exp(np.asarray(entropy, dtype=np.float64)) + self.b


def fit_entropy_reward_law(entropy: ArrayLike, reward: ArrayLike) -> EntropyRewardFit:
    """Least-squares fit of ``R = −a·exp(H) + b`` (linear in x = exp(H), design ``[−x, 1]``)."""
    h = np.asarray(entropy, dtype=np.float64).ravel()
    r = np.asarray(reward, dtype=np.float64).ravel()
    if h.size != r.size:
        raise ValueError(f"{h.size} entropies but {r.size} rewards")
    x = np.exp(h)
    if h.size < 2 or np.ptp(x) == 0:
        raise ValueError("need at least two distinct entropies to fit the law")
    design = np.column_stack([-x, np.ones_like(x)])
    (a, b), *_ = np.linalg.lstsq(design, r, rcond=None)
    resid = r - design @ np.array([a, b])
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return EntropyRewardFit(a=float(a), b=float(b), r2=r2)


def answer_key(extracted: str | None, text: str) -> Hashable:
    """An answer's equivalence class: its extracted value as a number when it is one, else normalised text."""
    raw = (extracted if extracted is not None else text[-60:]).strip()
    try:
        from memrl.tasks.mathanswer import to_number

        num = to_number(raw)
        if num is not None:
            return ("num", num)
    except Exception:  # noqa: BLE001 - any unparsable answer is its own text class
        pass
    return ("text", " ".join(raw.lower().split()))
