"""HNSW settings reach chroma, an existing collection keeps its build settings, and the exact path returns the
true top-k. No timing thresholds here: speed is measured in bench/bench_memory.py --curve."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from memrl.memory import HashEmbedder, IndexSettings, LessonRecord, open_memory


def _hnsw(mem) -> dict:
    return dict(mem.experience.index._col.configuration["hnsw"])


def test_settings_reach_a_new_collection(tmp_path):
    s = IndexSettings(search_ef=123, construction_ef=77, m=24)
    mem = open_memory(tmp_path, embedder=HashEmbedder(), index=s)
    h = _hnsw(mem)
    assert (h["ef_search"], h["ef_construction"], h["max_neighbors"], h["space"]) == (123, 77, 24, "cosine")


def test_existing_collection_keeps_build_settings_and_takes_search_ef(tmp_path, caplog):
    open_memory(tmp_path, embedder=HashEmbedder(), index=IndexSettings(construction_ef=77, m=24))
    with caplog.at_level(logging.WARNING, logger="memrl.memory.chroma"):
        mem = open_memory(tmp_path, embedder=HashEmbedder(), index=IndexSettings(search_ef=300, m=16))
    h = _hnsw(mem)
    assert (h["ef_search"], h["ef_construction"], h["max_neighbors"]) == (300, 77, 24)
    assert "keeps the build settings" in caplog.text and "m 24" in caplog.text


def test_settings_reject_unknown_fields():
    with pytest.raises(ValueError, match="search_EF"):
        IndexSettings(search_EF=10)  # type: ignore[call-arg]


def _fill(tmp_path, n: int, exact_below: int):
    mem = open_memory(tmp_path, embedder=HashEmbedder(dim=32), index=IndexSettings(exact_below=exact_below))
    recs = [LessonRecord(id=f"r{i}", text=f"lesson {i} about topic {i % 7}") for i in range(n)]
    mem.experience.upsert(recs)
    return mem, recs


def _true_sims(mem, recs, text: str) -> dict[str, float]:
    emb = mem.embedder
    mat = np.array(emb.embed([r.embed_text() for r in recs]))
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    q = np.array(emb.embed([text])[0])
    sims = mat @ (q / np.linalg.norm(q))
    return {r.id: float(x) for r, x in zip(recs, sims, strict=True)}


def test_exact_path_returns_true_top_k(tmp_path):
    mem, recs = _fill(tmp_path, 300, exact_below=1000)
    for text in ["lesson 5 about topic 5", "topic 3", "something else entirely"]:
        hits = mem.experience.query(text, k=10, include_embeddings=True)
        truth = _true_sims(mem, recs, text)  # hash vectors tie often: compare similarities, then each id's
        assert [round(h.similarity, 5) for h in hits] == [
            round(x, 5) for x in sorted(truth.values())[::-1][:10]
        ]
        assert all(abs(truth[h.record.id] - h.similarity) < 1e-5 for h in hits)
        assert hits[0].embedding is not None and len(hits[0].embedding) == 32


def test_exact_path_sees_writes_and_matches_hnsw_on_a_small_set(tmp_path):
    mem, recs = _fill(tmp_path, 50, exact_below=1000)
    lib = mem.experience
    assert lib.query("lesson 3 about topic 3", k=1)[0].record.id == "r3"
    lib.upsert([LessonRecord(id="new", text="a brand new lesson on fractions")])
    assert lib.query("a brand new lesson on fractions", k=1)[0].record.id == "new"
    lib.delete(["new"])
    assert "new" not in [h.record.id for h in lib.query("a brand new lesson on fractions", k=5)]
    hnsw = open_memory(tmp_path, embedder=HashEmbedder(dim=32), index=IndexSettings(exact_below=0)).experience
    for text in ["topic 4", "lesson 9"]:  # 50 rows: HNSW is exact too (ties may swap ids)
        a, b = lib.query(text, k=5), hnsw.query(text, k=5)
        assert [round(h.similarity, 4) for h in a] == [round(h.similarity, 4) for h in b]


def test_filtered_queries_and_k_beyond_count(tmp_path):
    mem, _ = _fill(tmp_path, 20, exact_below=1000)
    lib = mem.experience
    assert len(lib.query("topic 1", k=50)) == 20
    assert all(h.record.status == "active" for h in lib.query("topic 1", k=5, where={"status": "active"}))


def test_exact_cache_reads_in_pages(tmp_path):
    mem, recs = _fill(tmp_path, 50, exact_below=1000)
    index = mem.experience.index
    index._max_batch = 7  # a 100k-row collection is read in pages; here 8 pages of at most 7
    rows = index._read_all()
    assert sorted(rows["ids"]) == sorted(r.id for r in recs)
    assert len(rows["embeddings"]) == len(rows["documents"]) == len(rows["metadatas"]) == 50


class _SpyCollection:
    """A chroma collection that records the size of every `add` and `upsert` call."""

    def __init__(self, col) -> None:
        self._col, self.calls = col, []

    def __getattr__(self, name):
        return getattr(self._col, name)

    def add(self, **kw):
        self.calls.append(("add", len(kw["ids"])))
        return self._col.add(**kw)

    def upsert(self, **kw):
        self.calls.append(("upsert", len(kw["ids"])))
        return self._col.upsert(**kw)


def test_insert_and_upsert_split_writes_by_max_batch(tmp_path):
    from memrl.memory.chroma import ChromaIndex

    mem = open_memory(tmp_path, embedder=HashEmbedder(dim=8))
    spy = _SpyCollection(mem.experience.index._col)
    index = ChromaIndex(spy, max_batch=7, location=str(tmp_path))
    ids = [f"x{i}" for i in range(20)]
    embs = [[float(i + 1)] + [0.0] * 7 for i in range(20)]
    index.insert(ids, embs, [f"doc {i}" for i in ids], [{"n": i} for i in range(20)])
    assert spy.calls == [("add", 7), ("add", 7), ("add", 6)]
    assert index.count() == 20
    spy.calls.clear()
    # add keeps the first write of an id, in every batch
    index.insert(ids[:9], embs[:9], ["again"] * 9, [{"n": -1}] * 9)
    assert spy.calls == [("add", 7), ("add", 2)]
    assert {r.document for r in index.get(ids=ids[:9])} == {f"doc {i}" for i in ids[:9]}
    spy.calls.clear()
    index.upsert(ids[:9], embs[:9], ["again"] * 9, [{"n": -1}] * 9)
    assert spy.calls == [("upsert", 7), ("upsert", 2)]
    assert {r.document for r in index.get(ids=ids[:9])} == {"again"}
