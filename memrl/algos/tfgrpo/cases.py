"""Worked cases for Training-Free GRPO (`tfgrpo.experiences: cases | both`).

After each learning step, every training query whose group holds a verified-correct rollout gets (or keeps)
one case: the question and the shortest correct, untruncated solution the policy wrote for it. Cases live in
case memory under the run directory (`memory/`, chroma) and are retrieved for a query by similarity, or with
`cases.mode: q` by similarity plus a utility learned from the rewards of the rollouts each case was shown to
(`memrl.cases.CaseRetriever` in `q` mode, its `QModel` saved in `cases_q.json`).

Resume: every finished step leaves a snapshot, `cases/step-NNNN.json` (the case records and Q). A run restarted
after a kill first puts case memory and Q back to the snapshot of its last finished step, so the step that was
killed runs again on exactly the memory it first saw (its own cases, written before the kill, are gone).

Cases come from the training split only: `record` refuses an item whose id or question belongs to the
held-out split (`LeakError`), and held-out evaluation only reads.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from memrl.act import transcript
from memrl.cases import CaseRetriever, QModel, Selection
from memrl.memory.base import MemoryStores
from memrl.memory.records import CaseRecord
from memrl.runs import atomic_write
from memrl.spec import CaseRetrievalSpec
from memrl.types import Item, Rollout, question_key

__all__ = ["SolvedCases", "LeakError"]


class LeakError(RuntimeError):
    """A held-out item was about to enter memory."""


#: The namespace of a TF-GRPO run's worked cases in `<run>/memory`.
NAMESPACE = "tfgrpo"


def _case_id(item: Item) -> str:
    return f"case-{item.id}"


class SolvedCases:
    """Case memory of one Training-Free GRPO run, with the held-out split it must never learn from."""

    def __init__(
        self,
        folder: Path,
        cfg: CaseRetrievalSpec,
        *,
        held_out: list[Item],
        case_chars: int,
        memory: MemoryStores | None = None,
        embedder: str | None = None,
    ) -> None:
        """`memory`: the stores to keep cases in (a run passes its own); else `folder/memory` is opened."""
        self.cfg, self.case_chars = cfg, case_chars
        if memory is None:
            from memrl.memory.store import open_memory

            memory = open_memory(folder / "memory", embedder=embedder, namespace=NAMESPACE)
        self.memory: MemoryStores = memory
        self.store = self.memory.cases
        self.q_path = folder / "cases_q.json"
        self.retriever = CaseRetriever(self.store, cfg, q_path=self.q_path)
        self._held_ids = {it.id for it in held_out}
        self._held_questions = {question_key(it.question) for it in held_out}

    def __len__(self) -> int:
        return self.store.count()

    @property
    def q(self) -> QModel | None:
        return self.retriever.q

    def select(self, item: Item, salt: str, *, explore: bool) -> Selection:
        """Cases for `item` (never its own). With `explore` (learning, `mode: q`) the spec's exploration
        applies; held-out evaluation passes False and gets the greedy ranking."""
        return self.retriever.select(item.question, random.Random(salt), explore=explore)

    def record(
        self, step: int, item: Item, rollouts: list[Rollout], shown: list[Selection]
    ) -> dict[str, Any]:
        """Learn from one judged group: update Q from what each rollout was shown, keep the best solution."""
        if item.id in self._held_ids or question_key(item.question) in self._held_questions:
            raise LeakError(f"item {item.id!r} belongs to the held-out split; it must not enter case memory")
        deltas: list[float] = []
        for r, sel in zip(rollouts, shown, strict=True):
            if self.q is not None:
                deltas += self.q.update(f"{step}:{item.id}:{r.sample}", sel.used(), r.verdict.reward)
        # a clipped example is worse than none: the 1.5B model copied a "…" cut into its own answer
        good = [r for r in rollouts if r.verdict.correct and not r.completion.truncated
                and len(transcript(r.completion).strip()) <= self.case_chars]  # fmt: skip
        written = False
        if good:  # a tool-using answer is kept whole: its program, what it printed, the final answer
            best = min(good, key=lambda r: len(transcript(r.completion)))
            text = transcript(best.completion).strip()
            old = self.store.get(_case_id(item))
            if old is None or len(text) < len(old.trajectory[0] if old.trajectory else ""):
                group_acc = sum(r.verdict.reward for r in rollouts) / len(rollouts)
                self.store.upsert([CaseRecord(
                    id=_case_id(item), task=item.question, trajectory=[text], outcome=best.verdict.extracted or "",
                    reward=1.0, success=True,
                    metadata={"item_id": item.id, "step": step, "group_accuracy": round(group_acc, 4)},
                )])  # fmt: skip
                written = True
        return {"written": written, "q_deltas": deltas}

    def save(self) -> None:
        if self.q is not None:
            self.q.save(self.q_path)

    def _snapshot_path(self, step: int) -> Path:
        return self.q_path.parent / "cases" / f"step-{step:04d}.json"

    def checkpoint(self, step: int) -> None:
        """Snapshot case memory and Q as they are after `step` (call before the step's checkpoint)."""
        path = self._snapshot_path(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"cases": [c.model_dump(mode="json") for c in self.store.all()],
                "q": self.q.to_json() if self.q is not None else None}  # fmt: skip
        atomic_write(path, json.dumps(data) + "\n")

    def restore(self, step: int) -> None:
        """Put case memory and Q back to their state after `step` (0: empty)."""
        data: dict[str, Any] = {"cases": [], "q": None}
        if step and self._snapshot_path(step).exists():
            data = json.loads(self._snapshot_path(step).read_text())
        stale = [c.id for c in self.store.all()]
        if stale:
            self.store.delete(stale)
        if data["cases"]:
            self.store.upsert([CaseRecord.model_validate(c) for c in data["cases"]])
        if self.q is not None:
            c = self.cfg
            self.retriever.q = QModel.from_json(
                data["q"] or {}, alpha=c.alpha, alpha_shared=c.alpha_shared, q_init=c.q_init
            )
            self.save()
