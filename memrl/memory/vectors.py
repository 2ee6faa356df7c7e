"""Embeddings of texts, computed once per distinct text (lessons are compared and ranked many times a run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from memrl.memory.base import Embedder

__all__ = ["LessonVectors"]


class LessonVectors:
    """Embeddings of texts, computed once per distinct text."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}

    def of(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for t, v in zip(todo, self.embedder.embed(todo), strict=True):
                a = np.asarray(v, dtype=np.float64)
                self._cache[t] = a / (np.linalg.norm(a) or 1.0)
        if not texts:
            return np.zeros((0, self.embedder.dim))
        return np.stack([self._cache[t] for t in texts])
