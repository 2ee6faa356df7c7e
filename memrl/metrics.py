"""Evaluation statistics: unbiased Pass@k (Chen et al. 2021), Mean@k, and 95 % confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

__all__ = ["pass_at_k", "mean_ci", "Score", "score_items", "has_advantage", "PairedDiff", "paired_difference"]


def has_advantage(rewards: Sequence[float]) -> bool:
    """Does a group of rollouts of one query carry a learning signal? Only when its rewards differ: an
    all-equal group (all right, all wrong, all 0.5) has no better and worse attempt to compare. The one rule
    for `memrl run`, `MemoryPolicy.learn()` and the mixed-group share in the metrics."""
    return len(rewards) >= 2 and max(rewards) - min(rewards) > 1e-9


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean and a normal-approximation 95 % interval over items, clipped to [0, 1]."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    m = sum(values) / n
    if n == 1:
        return m, 0.0, 1.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return m, max(0.0, m - half), min(1.0, m + half)


class Score(BaseModel):
    """Held-out accuracy of one evaluation."""

    n_items: int
    k: int
    mean_at_k: float
    mean_ci: tuple[float, float]
    pass_at_k: float
    pass_ci: tuple[float, float]
    truncated_share: float = 0.0


def score_items(correct_counts: Sequence[int], k: int, truncated: int = 0) -> Score:
    """Mean@k and Pass@k over items, each with k samples of which `correct_counts[i]` were right."""
    means = [c / k for c in correct_counts]
    passes = [pass_at_k(k, c, k) for c in correct_counts]
    m, mlo, mhi = mean_ci(means)
    p, plo, phi = mean_ci(passes)
    total = len(correct_counts) * k
    return Score(
        n_items=len(correct_counts),
        k=k,
        mean_at_k=m,
        mean_ci=(mlo, mhi),
        pass_at_k=p,
        pass_ci=(plo, phi),
        truncated_share=truncated / total if total else 0.0,
    )


class PairedDiff(BaseModel):
    """`after − before` over the same items: the mean difference with a normal 95 % interval, how many items
    got better and worse, McNemar's exact p over those, and the plain verdict the interval supports."""

    n_items: int
    diff: float
    lo: float
    hi: float
    wins: int
    losses: int
    p_mcnemar: float

    @property
    def verdict(self) -> str:
        if self.n_items and self.lo > 0:
            return "improved"
        if self.n_items and self.hi < 0:
            return "worse"
        return "no significant change"

    def sentence(self, unit: float = 100.0, what: str = "points") -> str:
        """e.g. '-6.2 points (95 % CI -13.1 to +0.6; 3 items better, 7 worse): no significant change'."""
        return (f"{unit * self.diff:+.1f} {what} (95 % CI {unit * self.lo:+.1f} to {unit * self.hi:+.1f}; "
                f"{self.wins} items better, {self.losses} worse): {self.verdict}")  # fmt: skip


def paired_difference(before: Sequence[float], after: Sequence[float], z: float = 1.96) -> PairedDiff:
    """Compare two scorings of the same items (per-item scores in [0, 1], in the same order)."""
    if len(before) != len(after):
        raise ValueError(f"paired scores need the same items: {len(before)} vs {len(after)}")
    d = [y - x for x, y in zip(before, after, strict=True)]
    n = len(d)
    m = sum(d) / n if n else 0.0
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1)) if n > 1 else 0.0
    half = z * sd / math.sqrt(n) if n else 0.0
    wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
    k, t = min(wins, losses), wins + losses
    p = min(1.0, 2 * sum(math.comb(t, i) for i in range(k + 1)) / 2**t) if t else 1.0
    return PairedDiff(n_items=n, diff=m, lo=m - half, hi=m + half, wins=wins, losses=losses, p_mcnemar=p)
