"""Retrieval: thresholds, filters and MMR re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from memrl.memory import HashEmbedder, LessonRecord, mmr, open_memory, retrieve


def test_mmr_lambda_one_is_top_k():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(20, 8))
    rel = rng.uniform(size=20)
    assert mmr(rel, vecs, 5, lambda_=1.0) == list(np.argsort(-rel)[:5])


def test_mmr_skips_near_duplicates():
    # candidates 0-2 are the same direction (most relevant), 3 is different and a bit less relevant
    vecs = np.array([[1, 0, 0], [1, 0.01, 0], [1, 0, 0.01], [0, 1, 0]], dtype=float)
    rel = [0.9, 0.89, 0.88, 0.7]
    assert mmr(rel, vecs, 2, lambda_=1.0) == [0, 1]
    assert mmr(rel, vecs, 2, lambda_=0.5) == [0, 3]
    assert sorted(mmr(rel, vecs, 10, lambda_=0.3)) == [0, 1, 2, 3]  # k larger than the pool
    assert mmr([], np.zeros((0, 3)), 3) == []
    with pytest.raises(ValueError):
        mmr(rel, vecs, 2, lambda_=1.5)


@pytest.fixture
def library(tmp_path):
    lib = open_memory(tmp_path, embedder=HashEmbedder(256)).experience
    lib.add(
        [
            LessonRecord(id="a1", text="check units in physics answers"),
            LessonRecord(id="a2", text="check units in physics answers carefully"),
            LessonRecord(id="a3", text="check units in physics answers always"),
            LessonRecord(
                id="b", text="physics answers: draw a free body diagram", metadata={"topic": "mech"}
            ),
            LessonRecord(id="z", text="bake bread at two hundred degrees", status="retired"),
        ]
    )
    return lib


def test_retrieve_threshold_and_filters(library):
    plain = retrieve(library, "check units in physics answers", k=3)
    assert [h.record.id for h in plain][0] == "a1" and len(plain) == 3
    assert all(h.similarity >= 0.5 for h in retrieve(library, "check units", k=5, min_similarity=0.5))
    assert "z" not in {h.record.id for h in retrieve(library, "bread", k=5, where={"status": "active"})}
    assert [h.record.id for h in retrieve(library, "physics", k=5, where={"topic": "mech"})] == ["b"]
    assert retrieve(library, "anything", k=0) == []


def test_retrieve_mmr_prefers_variety(library):
    top = [h.record.id for h in retrieve(library, "check units in physics answers", k=2)]
    varied = [
        h.record.id
        for h in retrieve(
            library, "check units in physics answers", k=2, mmr_lambda=0.5, where={"status": "active"}
        )
    ]
    assert top[0] == varied[0] == "a1"
    assert top[1].startswith("a") and varied[1] == "b"
    assert len(retrieve(library, "physics", k=3, mmr_lambda=0.5, where={"status": "active"})) == 3
