"""The learned utility of a case, Q(task, case), for ranking case memory (`memrl.cases.retriever`).

The utility is linear in two features of the pair plus a per-case term:

    Q(s, c) = b_c + θ · φ(s, c),      φ(s, c) = (sim(s, c), r_c)

where sim(s, c) is the cosine similarity of the task s to the case's task, r_c the reward the case itself
earned, b_c a per-case utility (starts at `q_init`) and θ weights shared by all cases (start at 0, so Q
starts equal for every case and the first rankings are pure similarity).

Update rule, after every learning episode on task s with reward r ∈ [0, 1], for the set C of cases that were
in that episode's planner prompt, all δ computed with the parameters from before the episode:

    δ_c = r − Q(s, c)
    b_c ← b_c + α · δ_c                          (α = cases.alpha, default 0.3)
    θ   ← θ + α_θ · (1/|C|) Σ_c δ_c · φ(s, c)    (α_θ = cases.alpha_shared, default 0.05)
    n_c ← n_c + 1

This is the semi-gradient TD(0) step with γ = 0: choosing the cases is a one-step decision whose return is
the episode's reward (the MemRL rule Q ← Q + α(r − Q) for b_c, plus a shared linear part that carries what
was learned to cases never used yet). An update is applied at most once per episode key, so a resumed run
does not count an episode twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from memrl.runs import atomic_write

__all__ = ["QModel", "distribution"]

SCHEMA = 1


class QModel:
    """The learned utility; its whole state is one JSON file, written atomically."""

    def __init__(self, alpha: float = 0.3, alpha_shared: float = 0.05, q_init: float = 0.0) -> None:
        self.alpha, self.alpha_shared, self.q_init = alpha, alpha_shared, q_init
        self.theta = np.zeros(2)
        self.bias: dict[str, float] = {}
        self.uses: dict[str, int] = {}
        self.applied: list[str] = []

    @staticmethod
    def features(sim: float, case_reward: float) -> np.ndarray:
        return np.array([sim, case_reward], dtype=np.float64)

    def value(self, case_id: str, sim: float, case_reward: float) -> float:
        return self.bias.get(case_id, self.q_init) + float(self.theta @ self.features(sim, case_reward))

    @property
    def total_uses(self) -> int:
        return sum(self.uses.values())

    def update(self, episode: str, used: list[tuple[str, float, float]], reward: float) -> list[float]:
        """Apply the rule for one episode; `used` holds (case id, sim, case reward). Returns the δ values."""
        if episode in self.applied or not used:
            return []
        deltas = [reward - self.value(cid, sim, r_c) for cid, sim, r_c in used]
        grad = sum(d * self.features(sim, r_c) for d, (_, sim, r_c) in zip(deltas, used, strict=True))
        for d, (cid, _, _) in zip(deltas, used, strict=True):
            self.bias[cid] = self.bias.get(cid, self.q_init) + self.alpha * d
            self.uses[cid] = self.uses.get(cid, 0) + 1
        self.theta = self.theta + self.alpha_shared * grad / len(used)
        self.applied.append(episode)
        return deltas

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "theta": self.theta.tolist(), "bias": self.bias, "uses": self.uses,
                "applied": self.applied, "alpha": self.alpha, "alpha_shared": self.alpha_shared,
                "q_init": self.q_init}  # fmt: skip

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(
        cls, path: Path, *, alpha: float = 0.3, alpha_shared: float = 0.05, q_init: float = 0.0
    ) -> QModel:
        """The saved model at `path` (step sizes from the spec), or a fresh one."""
        return cls.from_json(json.loads(path.read_text()) if path.exists() else {}, alpha=alpha,
                             alpha_shared=alpha_shared, q_init=q_init)  # fmt: skip

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, alpha: float = 0.3, alpha_shared: float = 0.05, q_init: float = 0.0
    ) -> QModel:
        """A model from `to_json` output (step sizes from the spec); `{}` gives a fresh one."""
        q = cls(alpha, alpha_shared, q_init)
        if data:
            q.theta = np.asarray(data.get("theta", [0.0, 0.0]), dtype=np.float64)
            q.bias = {k: float(v) for k, v in data.get("bias", {}).items()}
            q.uses = {k: int(v) for k, v in data.get("uses", {}).items()}
            q.applied = list(data.get("applied", []))
        return q


def distribution(values: list[float]) -> dict[str, Any]:
    """Summary of a set of Q values for metrics.jsonl: count, mean, sd, quantiles, a 6-bin histogram."""
    if not values:
        return {"n": 0}
    v = np.asarray(values, dtype=np.float64)
    q = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9])
    edges = [-np.inf, 0.0, 0.25, 0.5, 0.75, 1.0, np.inf]
    hist = np.histogram(v, bins=edges)[0]
    r = lambda x: round(float(x), 4)  # noqa: E731
    return {"n": len(v), "mean": r(v.mean()), "sd": r(v.std()), "min": r(v.min()), "p10": r(q[0]),
            "p25": r(q[1]), "p50": r(q[2]), "p75": r(q[3]), "p90": r(q[4]), "max": r(v.max()),
            "hist_edges": ["-inf", 0, 0.25, 0.5, 0.75, 1, "inf"], "hist": hist.tolist()}  # fmt: skip
