"""Bounds on a token's entropy from an API's top-k log-probabilities (reference/ENTROPY.md, T1).

Hosted APIs return at most the top k alternatives (OpenAI: ``top_logprobs`` ≤ 20; Anthropic: none), so the
full-distribution entropy cannot be computed, only bracketed. With the top-k probabilities p_1 ≥ … ≥ p_k and
the tail mass r = max(0, 1 − Σp):

- ``h_top`` = −Σ p_i log p_i (the tail ignored),
- ``h_coarse`` = h_top − r log r (the tail as one outcome),
- ``h_lower`` = h_top + ⌊r/p_k⌋ copies of −p_k log p_k + (−s log s) for the remainder s (the tail as
  concentrated as the top-k ordering allows: the tightest lower bound),
- ``h_upper`` = h_top + r·log((V − k)/r) (the tail spread evenly over the V − k other tokens).

``h_top ≤ h_coarse ≤ h_lower ≤ H ≤ h_upper``. Report them as bounds, never as the entropy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["TopKEntropyBounds", "topk_entropy_bounds", "topk_entropy_bounds_from_logprobs"]


def _xlogx(x: float) -> float:
    return x * math.log(x) if x > 0 else 0.0


@dataclass(frozen=True)
class TopKEntropyBounds:
    """Entropy bounds (nats) for one token position from its top-k probabilities."""

    k: int
    tail_mass: float
    h_top: float
    h_coarse: float
    h_lower: float
    h_upper: float

    @property
    def width(self) -> float:
        """How loose the bracket is: h_upper − h_lower."""
        return self.h_upper - self.h_lower


def topk_entropy_bounds(top_probs: ArrayLike, vocab_size: int | None = None) -> TopKEntropyBounds:
    """Bracket the entropy of a distribution of which only the top-k probabilities are known.

    ``top_probs`` need not be sorted. Without ``vocab_size`` the upper bound is ``inf`` (unless the
    top k hold all the mass).
    """
    p = np.sort(np.asarray(top_probs, dtype=np.float64).ravel())[::-1]
    if p.size == 0:
        raise ValueError("need at least one top-k probability")
    if (p < 0).any() or p.sum() > 1 + 1e-3:
        raise ValueError(f"top-k probabilities must be ≥ 0 and sum to ≤ 1 (sum {p.sum():.6g})")
    k = int(p.size)
    r = 1.0 - float(p.sum())
    r = r if r > 1e-12 else 0.0  # round-off when the top k hold all the mass
    h_top = -sum(_xlogx(float(x)) for x in p)
    h_coarse = h_top - _xlogx(r)
    pk = float(p[-1])
    if r > 0 and pk > 0:
        copies = math.floor(r / pk)
        s = r - copies * pk
        h_lower = h_top - copies * _xlogx(pk) - _xlogx(s)
    else:
        h_lower = h_coarse
    if r == 0:
        h_upper = h_top
    elif vocab_size is None:
        h_upper = math.inf
    else:
        if vocab_size <= k:
            raise ValueError(f"vocab_size {vocab_size} must exceed k = {k} when mass is missing")
        h_upper = h_top + r * math.log((vocab_size - k) / r)
    return TopKEntropyBounds(
        k=k, tail_mass=r, h_top=h_top, h_coarse=h_coarse, h_lower=h_lower, h_upper=h_upper
    )


def topk_entropy_bounds_from_logprobs(
    top_logprobs: Mapping[str, float] | Sequence[float], vocab_size: int | None = None
) -> TopKEntropyBounds:
    """Same as :func:`topk_entropy_bounds` from log-probabilities (a list, or ``{token: logprob}`` as
    :class:`memrl.types.TokenLogprob.top` holds them)."""
    values = list(top_logprobs.values()) if isinstance(top_logprobs, Mapping) else list(top_logprobs)
    return topk_entropy_bounds(np.exp(np.asarray(values, dtype=np.float64)), vocab_size)
