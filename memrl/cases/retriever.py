"""Case retrieval, one home for all its users (the Memento planner, Training-Free GRPO's worked cases and
`MemoryPolicy`): similarity top-k, or ranking by similarity plus a learned utility Q(task, case).

Ranking in `q` mode: score = w_sim·sim + w_q·Q over the `pool` nearest cases, then either ε-greedy (each of
the k slots takes a uniformly random pool case with probability ε) or UCB (score + c·sqrt(ln(1 + N) / (1 +
n_c)), N = Σ n_c); held-out use passes `explore=False` and gets the greedy ranking. For the algorithms
(`exclude_same_task`, on by default) a case of the task itself (same text up to spacing) is never chosen: a
second epoch or a repeated episode would be handed its own answer. A deployed `MemoryPolicy` keeps it off: there
an earlier case of the same request is what memory is for. The update rule of Q is in `memrl.cases.q`.
"""

from __future__ import annotations

import math
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memrl.cases.q import QModel
from memrl.memory.base import CaseStore, Hit, Where
from memrl.memory.records import CaseRecord
from memrl.memory.retrieve import retrieve as top_k
from memrl.spec import CaseRetrievalSpec
from memrl.types import question_key

if TYPE_CHECKING:
    from memrl.policy_cases import Outcome

__all__ = ["Selection", "select_cases", "CaseRetriever", "SimilarityCases"]


@dataclass
class Selection:
    """The cases chosen for one episode, with what the choice was based on."""

    hits: list[Hit[CaseRecord]] = field(default_factory=list)
    q_values: list[float] = field(default_factory=list)
    explored: list[bool] = field(default_factory=list)
    pool_q: list[float] = field(default_factory=list)
    pool_size: int = 0

    def used(self) -> list[tuple[str, float, float]]:
        return [(h.record.id, h.similarity, h.record.reward) for h in self.hits]

    def summary(self) -> dict[str, Any]:
        """What the Q update and the metrics need, as JSON (kept in `pending.json` for a resume)."""
        return {"used": self.used(), "q_values": self.q_values, "explored": self.explored,
                "pool_q": self.pool_q, "pool_size": self.pool_size,
                "positive": sum(h.record.success for h in self.hits)}  # fmt: skip


def _same_task(a: str, b: str) -> bool:
    return question_key(a) == question_key(b)


def select_cases(
    store: CaseStore,
    task: str,
    cfg: CaseRetrievalSpec,
    q: QModel | None,
    rng: random.Random,
    *,
    where: Where | None = None,
    mmr_lambda: float | None = None,
    exclude_same_task: bool = True,
) -> Selection:
    """Choose up to `cfg.k` cases for `task` (see the module docstring)."""
    if cfg.mode == "off" or store.count() == 0:
        return Selection()
    want, extra = max(cfg.pool, cfg.k), int(exclude_same_task)

    def other(hits: list[Hit[CaseRecord]]) -> list[Hit[CaseRecord]]:
        return [h for h in hits if not (exclude_same_task and _same_task(h.record.task, task))]

    if cfg.mode == "similarity" or q is None:
        found = top_k(store, task, want + extra, where=where, min_similarity=cfg.min_similarity,
                      mmr_lambda=mmr_lambda)  # fmt: skip
        pool = other(found)[:want]
        return Selection(hits=pool[: cfg.k], explored=[False] * len(pool[: cfg.k]), pool_size=len(pool))
    pool = other(store.query(task, want + extra, where=where, min_similarity=cfg.min_similarity))[:want]
    qv = [q.value(h.record.id, h.similarity, h.record.reward) for h in pool]
    score = [cfg.w_sim * h.similarity + cfg.w_q * v for h, v in zip(pool, qv, strict=True)]
    if cfg.exploration == "ucb":
        n_total = q.total_uses
        score = [s + cfg.ucb_c * math.sqrt(math.log(1 + n_total) / (1 + q.uses.get(h.record.id, 0)))
                 for s, h in zip(score, pool, strict=True)]  # fmt: skip
    remaining = list(range(len(pool)))
    chosen: list[int] = []
    explored: list[bool] = []
    while remaining and len(chosen) < cfg.k:
        greedy = max(remaining, key=lambda i: (score[i], -i))
        pick = greedy
        if cfg.exploration == "epsilon" and cfg.epsilon > 0 and rng.random() < cfg.epsilon:
            pick = rng.choice(remaining)
        chosen.append(pick)
        explored.append(pick != greedy)
        remaining.remove(pick)
    return Selection(
        hits=[pool[i] for i in chosen],
        q_values=[qv[i] for i in chosen],
        explored=explored,
        pool_q=qv,
        pool_size=len(pool),
    )


class CaseRetriever:
    """Case memory on one store, read by similarity (`cfg.mode: similarity`) or by similarity plus a learned
    utility (`q`, with `q_path` to keep Q across processes). Algorithms call `select`/`update`;
    `MemoryPolicy` calls `retrieve`/`learn` (the `CaseSource` seam), which is how a deployed app gets Q-ranked
    cases too: the utility of the cases an outcome was shown moves toward its reward."""

    def __init__(
        self,
        store: CaseStore,
        cfg: CaseRetrievalSpec | None = None,
        *,
        q: QModel | None = None,
        q_path: str | Path | None = None,
        where: Where | None = None,
        mmr_lambda: float | None = None,
        exclude_same_task: bool = True,
    ) -> None:
        self.store, self.exclude_same_task = store, exclude_same_task
        self.cfg = cfg or CaseRetrievalSpec(mode="similarity", exploration="none")
        self.where, self.mmr_lambda = where, mmr_lambda
        self.q_path = Path(q_path) if q_path else None
        c = self.cfg
        if q is None and c.mode == "q":
            q = (QModel.load(self.q_path, alpha=c.alpha, alpha_shared=c.alpha_shared, q_init=c.q_init)
                 if self.q_path else QModel(c.alpha, c.alpha_shared, c.q_init))  # fmt: skip
        self.q = q
        self._lock = threading.Lock()
        self._shown: OrderedDict[str, Selection] = OrderedDict()  # query -> last selection (for learn)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r}, mode={self.cfg.mode!r})"

    # ------------------------------------------------------------------ algorithms
    def select(
        self, task: str, rng: random.Random, *, explore: bool = True, k: int | None = None
    ) -> Selection:
        """Cases for `task`; `explore=False` (held-out use) takes the greedy ranking."""
        cfg = self.cfg
        if not explore or k is not None:
            cfg = cfg.model_copy(
                update={"exploration": cfg.exploration if explore else "none", "k": k or cfg.k}
            )
        return select_cases(self.store, task, cfg, self.q, rng, where=self.where, mmr_lambda=self.mmr_lambda,
                            exclude_same_task=self.exclude_same_task)  # fmt: skip

    def update(self, episode: str, used: Sequence[tuple[str, float, float]], reward: float) -> list[float]:
        """Move the utility of the cases an episode was shown toward its reward (q mode; else nothing)."""
        if self.q is None:
            return []
        deltas = self.q.update(episode, list(used), reward)
        if self.q_path is not None and deltas:
            self.q.save(self.q_path)
        return deltas

    # ------------------------------------------------------------------ MemoryPolicy (CaseSource)
    def retrieve(self, query: str, k: int) -> list[CaseRecord]:
        if k <= 0 or not query.strip():
            return []
        with self._lock:
            sel = self.select(query, random.Random(query), explore=self.q is not None, k=k)
            self._shown[question_key(query)] = sel
            while len(self._shown) > 4096:
                self._shown.popitem(last=False)
        return [h.record for h in sel.hits]

    def learn(self, outcomes: list[Outcome]) -> int:
        """Write the outcomes as cases; in q mode, first update Q from the cases each outcome was shown."""
        records = [
            CaseRecord(
                task=o.query, trajectory=o.trajectory, outcome=o.feedback, reward=o.reward, success=o.correct
            )
            for o in outcomes
        ]
        with self._lock:
            if self.q is not None:
                for o in outcomes:
                    sel = self._shown.get(question_key(o.query))
                    used = [u for u in sel.used() if u[0] in o.cases] if sel else []
                    self.update(f"outcome:{o.at}:{o.query}", used, o.reward)
            self.store.add(records)
        return len(records)


class SimilarityCases(CaseRetriever):
    """Non-parametric Memento retrieval: the stored cases most similar to the query (optionally filtered by
    `where`, above `min_similarity`, re-ranked by MMR)."""

    def __init__(
        self,
        store: CaseStore,
        *,
        where: Where | None = None,
        min_similarity: float | None = None,
        mmr_lambda: float | None = None,
    ) -> None:
        cfg = CaseRetrievalSpec(mode="similarity", exploration="none", min_similarity=min_similarity)
        super().__init__(store, cfg, where=where, mmr_lambda=mmr_lambda, exclude_same_task=False)
