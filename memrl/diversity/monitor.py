"""Per-step diversity metrics of the library and the rollouts, and the collapse alarm.

The alarm fires when the learning signal or the outputs narrow (few mixed groups, low answer entropy) or
when the library shrinks sharply in one step (ACE's "context collapse"); its response is logged and
applied by the loop: more exploration (a higher rollout temperature and per-rollout lesson subsets).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
from pydantic import BaseModel

from memrl.diversity.measures import redundant_pairs
from memrl.diversity.vendi import vendi_score
from memrl.entropy.measures import answer_key, discrete_semantic_entropy, miller_madow_entropy, plugin_entropy
from memrl.metrics import has_advantage, pass_at_k
from memrl.spec import DiversitySpec

__all__ = ["library_diversity", "group_diversity", "Alarm", "check_collapse", "answer_key"]


def library_diversity(vectors: Sequence[Sequence[float]], redundancy_threshold: float) -> dict[str, float]:
    """Vendi score of the lesson embeddings, Vendi/n, and near-duplicate pairs."""
    n = len(vectors)
    if n == 0:
        return {"vendi": 0.0, "vendi_per_item": 0.0, "redundant_pairs": 0}
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.clip(x @ x.T, 0.0, 1.0)  # a PSD kernel with unit diagonal: negative cosines count as unrelated
    np.fill_diagonal(s, 1.0)
    v = vendi_score(s)
    return {
        "vendi": v,
        "vendi_per_item": v / n,
        "redundant_pairs": len(redundant_pairs(s, redundancy_threshold)),
    }


def group_diversity(groups: Sequence[Sequence[tuple[str, Hashable, float, bool]]]) -> dict[str, float]:
    """Metrics over rollout groups given (answer as written, its equivalence class, reward, correct) per
    rollout: answer entropy over the answers as written (plug-in and Miller–Madow), discrete semantic
    entropy over the classes, mixed-group share, pass@1 and pass@G."""
    if not groups:
        return {}
    g = len(groups[0])
    means = [sum(r for _, _, r, _ in grp) / len(grp) for grp in groups]
    correct = [sum(c for _, _, _, c in grp) for grp in groups]
    answers = [[a for a, _, _, _ in grp] for grp in groups]
    classes = [[k for _, k, _, _ in grp] for grp in groups]
    n = len(groups)
    return {
        "mean_reward": sum(means) / n,
        "mixed_fraction": sum(has_advantage([r for _, _, r, _ in grp]) for grp in groups) / n,
        "pass@1": sum(pass_at_k(g, c, 1) for c in correct) / n,
        f"pass@{g}": sum(pass_at_k(g, c, g) for c in correct) / n,
        "answer_entropy": sum(plugin_entropy(a) for a in answers) / n,
        "answer_entropy_mm": sum(miller_madow_entropy(a) for a in answers) / n,
        "semantic_entropy": sum(discrete_semantic_entropy(k) for k in classes) / n,
    }


class Alarm(BaseModel):
    reasons: list[str]


def check_collapse(
    cfg: DiversitySpec, metrics: dict[str, float], size_before: int, size_after: int
) -> Alarm | None:
    reasons = []
    if cfg.alarm_mixed_fraction is not None and metrics.get("mixed_fraction", 1.0) < cfg.alarm_mixed_fraction:
        reasons.append(f"mixed-group share {metrics['mixed_fraction']:.2f} < {cfg.alarm_mixed_fraction}")
    if cfg.alarm_answer_entropy is not None and metrics.get("answer_entropy", 1.0) < cfg.alarm_answer_entropy:
        reasons.append(f"answer entropy {metrics['answer_entropy']:.3f} < {cfg.alarm_answer_entropy}")
    if (
        cfg.alarm_shrink is not None
        and size_before >= 4
        and size_after < (1 - cfg.alarm_shrink) * size_before
    ):
        reasons.append(f"library shrank from {size_before} to {size_after} lessons")
    return Alarm(reasons=reasons) if reasons else None
