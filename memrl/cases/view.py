"""What case memory holds and why a case is retrieved: every case with its reward, uses and learned utility.

    view = case_view("runs/NAME")                         # a run directory, or the memory directory itself
    view = case_view("runs/NAME", query="What is 3 + 4?") # ranked as retrieval ranks them for that query

The utility comes from the `QModel` saved beside the memory (`memrl.cases.q`): `cases_q.json` for Training-Free
GRPO's worked cases, `memento_q.json` / `memento_q_<namespace>.json` for the Memento agent. Without a query a
case's learned part is its own utility b_c (and how often it was updated, n_c); with one, each case also gets
its similarity, Q(s, c) = b_c + θ·φ(s, c) and the score w_sim·sim + w_q·Q that ranks it (the greedy ranking
held-out use sees; the run's `cases` settings when the run's spec is found).
"""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import BaseModel, Field

from memrl.cases.q import QModel
from memrl.cases.retriever import select_cases
from memrl.errors import ConfigError
from memrl.memory.stats import memory_stats
from memrl.memory.store import open_memory
from memrl.spec import CaseRetrievalSpec

__all__ = ["CaseRow", "CaseView", "case_view", "memory_location"]


class CaseRow(BaseModel):
    id: str
    task: str
    reward: float
    success: bool
    uses: int = Field(description="Times the case was put into a prompt (the store's counter).")
    utility: float | None = Field(
        default=None, description="Learned per-case utility b_c (None: no Q model)."
    )
    updates: int = Field(default=0, description="Q updates the case took part in (n_c).")
    similarity: float | None = None
    q: float | None = Field(default=None, description="Q(query, case), with a query and a Q model.")
    score: float | None = Field(default=None, description="What retrieval ranks by, with a query.")


class CaseView(BaseModel):
    location: str
    namespace: str
    total: int
    q_path: str | None = None
    theta: list[float] | None = None
    query: str | None = None
    rows: list[CaseRow]


def memory_location(source: str | Path) -> Path | str:
    """A run directory's `memory/` folder, or `source` itself (a memory directory or chroma URL)."""
    loc = str(source)
    if loc.startswith(("http://", "https://")):
        return loc
    path = Path(source).expanduser()
    if (path / "memory" / "chroma.sqlite3").is_file():
        return path / "memory"
    return path


def _q_file(location: Path | str, namespace: str, given: str | Path | None) -> Path | None:
    if given is not None:
        if not Path(given).is_file():
            raise ConfigError(f"Q file {str(given)!r} not found (a cases_q.json or memento_q*.json)")
        return Path(given)
    if isinstance(location, str):
        return None
    names = ["cases_q.json"] if namespace == "tfgrpo" else [f"memento_q_{namespace}.json", "memento_q.json"]
    for folder in (location, location.parent):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _run_cases_spec(location: Path | str, namespace: str) -> CaseRetrievalSpec:
    if isinstance(location, Path) and (location.parent / "spec.yaml").is_file():
        from memrl.runs import RunDir

        try:
            spec = RunDir(location.parent).load_spec()
        except (ConfigError, ValueError, OSError):
            return CaseRetrievalSpec()
        section = spec.tfgrpo if namespace == "tfgrpo" else spec.memento
        if section is not None:
            return section.cases
    return CaseRetrievalSpec()


def case_view(
    source: str | Path,
    *,
    namespace: str | None = None,
    query: str | None = None,
    q_path: str | Path | None = None,
    limit: int | None = None,
) -> CaseView:
    """Cases at `source` (a run directory, a memory directory or a chroma URL), most useful first: by learned
    utility, then reward and uses; with `query`, in retrieval order for it."""
    location = memory_location(source)
    stats = memory_stats(location)
    found = {s.namespace: s for s in stats.stores if s.kind == "cases"}
    if namespace is None:
        with_cases = [ns for ns, s in found.items() if s.count] or list(found)
        if len(with_cases) != 1:
            raise ConfigError(
                f"{location} holds case stores in {len(with_cases)} namespaces ({', '.join(with_cases) or 'none'}): "
                "name one with --namespace"
            )
        namespace = with_cases[0]
    if namespace not in found:
        raise ConfigError(
            f"{location} has no case store in namespace {namespace!r} (found: {', '.join(found)})"
        )
    memory = open_memory(location, embedder=found[namespace].embedder, namespace=namespace)
    qfile = _q_file(location, namespace, q_path)
    model = QModel.load(qfile) if qfile else None
    records = memory.cases.all()
    rows = [
        CaseRow(id=r.id, task=r.task, reward=r.reward, success=r.success, uses=r.uses,
                utility=model.bias.get(r.id, model.q_init) if model else None,
                updates=model.uses.get(r.id, 0) if model else 0)
        for r in records
    ]  # fmt: skip
    if query:
        cfg = _run_cases_spec(location, namespace)
        n = len(records)
        cfg = cfg.model_copy(update={"mode": "q" if model else "similarity", "exploration": "none",
                                     "k": max(1, n), "pool": max(1, n), "min_similarity": None})  # fmt: skip
        sel = select_cases(memory.cases, query, cfg, model, random.Random(0), exclude_same_task=False)
        by_id = {r.id: r for r in rows}
        ranked = []
        for i, h in enumerate(sel.hits):
            row = by_id[h.record.id]
            row.similarity = h.similarity
            if model is not None:
                row.q = sel.q_values[i]
                row.score = cfg.w_sim * h.similarity + cfg.w_q * row.q
            else:
                row.score = h.similarity
            ranked.append(row)
        rows = ranked
    else:
        rows.sort(key=lambda r: (-(r.utility or 0.0), -r.reward, -r.uses, r.id))
    return CaseView(
        location=str(location), namespace=namespace, total=len(records), q_path=str(qfile) if qfile else None,
        theta=model.theta.tolist() if model else None, query=query, rows=rows[:limit] if limit else rows,
    )  # fmt: skip
