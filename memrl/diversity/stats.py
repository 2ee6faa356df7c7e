"""Diversity of an experience library across its saved versions (`memrl library stats RUN`)."""

from __future__ import annotations

from pydantic import BaseModel

from memrl.diversity.monitor import library_diversity
from memrl.library import Library
from memrl.memory.embed import make_embedder
from memrl.memory.vectors import LessonVectors
from memrl.tokens import approx_tokens

__all__ = ["VersionStats", "version_stats"]


class VersionStats(BaseModel):
    version: int
    lessons: int
    tokens: int
    vendi: float
    vendi_per_item: float
    redundant_pairs: int
    added: int
    deleted: int


def version_stats(
    library: Library, embedder: str | None = None, redundancy_threshold: float = 0.9
) -> list[VersionStats]:
    vectors = LessonVectors(make_embedder(embedder))
    rows, previous = [], set[str]()
    for v in sorted(library.versions):
        active = {k: x for k, x in library.lessons_at(v).items() if x.status == "active"}
        texts = [x.text for x in active.values()]
        div = library_diversity(vectors.of(texts).tolist() if texts else [], redundancy_threshold)
        rows.append(
            VersionStats(
                version=v,
                lessons=len(texts),
                tokens=sum(approx_tokens(t) for t in texts),
                vendi=div["vendi"],
                vendi_per_item=div["vendi_per_item"],
                redundant_pairs=int(div["redundant_pairs"]),
                added=len(set(active) - previous),
                deleted=len(previous - set(active)),
            )
        )
        previous = set(active)
    return rows
