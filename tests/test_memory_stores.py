"""The typed stores on a real embedded chroma (and on the in-memory test double, which must behave the same)."""

from __future__ import annotations

import pytest

from memrl.errors import ConfigError
from memrl.memory import (
    CaseRecord,
    HashEmbedder,
    InMemoryBackend,
    LessonRecord,
    SubtaskRecord,
    ToolCallRecord,
    open_memory,
)


@pytest.fixture(params=["chroma", "inmemory"])
def mem(request, tmp_path):
    location = tmp_path / "mem" if request.param == "chroma" else InMemoryBackend()
    return open_memory(location, embedder=HashEmbedder(64))


LESSONS = [
    LessonRecord(id="l1", text="check the units of every quantity", metadata={"topic": "physics"}, helpful=3),
    LessonRecord(
        id="l2", text="find a common denominator before adding fractions", metadata={"topic": "math"}
    ),
    LessonRecord(id="l3", text="re-read the question before answering", status="retired", created_step=4),
]


def test_add_get_query_count(mem):
    lib = mem.experience
    assert lib.add(LESSONS) == ["l1", "l2", "l3"]
    assert lib.count() == 3
    assert lib.get("l2") == LESSONS[1]
    assert lib.get("nope") is None
    assert [r.id for r in lib.get_many(["l3", "nope", "l1"])] == ["l3", "l1"]
    hits = lib.query("adding fractions with a common denominator", k=2)
    assert hits[0].record.id == "l2"
    assert hits[0].similarity > hits[1].similarity
    assert 0.99 < lib.query(LESSONS[0].text, k=1)[0].similarity <= 1.0001
    assert len(lib.query("anything", k=10)) == 3  # k larger than the store is fine


def test_filters(mem):
    mem.experience.add(LESSONS)
    lib = mem.experience
    assert {r.id for r in lib.all(where={"status": "active"})} == {"l1", "l2"}
    assert [r.id for r in lib.all(where={"topic": "math"})] == ["l2"]  # a record's own metadata
    assert [r.id for r in lib.all(where={"helpful": {"$gte": 1}})] == ["l1"]
    assert {r.id for r in lib.all(where={"$or": [{"topic": "math"}, {"created_step": 4}]})} == {"l2", "l3"}
    assert lib.count(where={"status": "active", "topic": "physics"}) == 1  # two keys -> $and
    assert {r.id for r in lib.all(where={"status": {"$in": ["retired"]}})} == {"l3"}
    hits = lib.query("check the units", k=5, where={"status": "retired"})
    assert [h.record.id for h in hits] == ["l3"]
    assert lib.query("check the units of every quantity", k=5, min_similarity=0.99)[0].record.id == "l1"
    assert len(lib.query("check the units of every quantity", k=5, min_similarity=0.99)) == 1
    with pytest.raises(ConfigError, match="operator"):
        lib.all(where={"$gte": 1})


def test_update_and_delete_really_change_the_store(mem):
    lib = mem.experience
    lib.add(LESSONS)
    assert lib.query("bake bread in a hot oven", k=1)[0].record.id != "l3"
    updated = lib.update("l3", text="bake bread in a hot oven", status="active")
    assert updated.version == 1 and updated.updated_at >= updated.created_at  # versions are the Library's
    assert lib.get("l3").text == "bake bread in a hot oven"
    assert lib.query("bake bread in a hot oven", k=1)[0].record.id == "l3"  # re-embedded
    assert lib.count(where={"status": "retired"}) == 0
    lib.delete(["l3", "l1"])
    assert lib.count() == 1 and lib.get("l3") is None
    assert [h.record.id for h in lib.query("bake bread in a hot oven", k=5)] == ["l2"]
    with pytest.raises(KeyError):
        lib.update("l3", text="x")
    with pytest.raises(ValueError, match="id"):
        lib.update("l2", id="other")
    with pytest.raises(ValueError, match="status"):
        lib.update("l2", status="bogus")  # validated like a new record


def test_add_rejects_existing_ids_upsert_replaces(mem):
    lib = mem.experience
    lib.add(LESSONS[:1])
    with pytest.raises(ValueError, match="already"):
        lib.add([LessonRecord(id="l1", text="other")])
    lib.upsert([LessonRecord(id="l1", text="other")])
    assert lib.get("l1").text == "other" and lib.count() == 1
    with pytest.raises(TypeError):
        lib.add([CaseRecord(task="t")])


def test_mark_used(mem):
    mem.experience.add(LESSONS)
    mem.experience.mark_used(["l1", "l2"])
    mem.experience.mark_used(["l1"])
    assert mem.experience.get("l1").uses == 2 and mem.experience.get("l1").last_used_at is not None
    assert mem.experience.count(where={"uses": 0}) == 1


def test_case_subtask_tool_stores(mem):
    mem.cases.add(
        [
            CaseRecord(id="c1", task="sum the numbers 2 and 3", plan="add them", reward=1.0, success=True),
            CaseRecord(id="c2", task="sort a list of names", trajectory=["read", "sort"], reward=0.0),
        ]
    )
    hits = mem.cases.query("sum two numbers", k=1, where={"reward": {"$gte": 0.5}})
    assert hits[0].record.id == "c1" and hits[0].record.plan == "add them"
    assert mem.cases.get("c2").trajectory == ["read", "sort"]
    mem.subtasks.add([SubtaskRecord(subtask="parse input", parent_id="c1", result="ok", success=True)])
    assert mem.subtasks.all(where={"parent_id": "c1", "success": True})[0].result == "ok"
    mem.tools.add(
        [
            ToolCallRecord(tool="search", args_summary="query=weather", outcome="sunny", latency_s=0.2),
            ToolCallRecord(tool="search", args_summary="query=", error="empty query", latency_s=0.01),
        ]
    )
    assert mem.tools.count(where={"success": False}) == 1
    assert mem.tools.all(where={"latency_s": {"$gt": 0.1}})[0].outcome == "sunny"
    assert mem.experience.count() == 0  # stores are separate


def test_embedder_mismatch_is_an_error(tmp_path):
    open_memory(tmp_path, embedder=HashEmbedder(64)).experience.add(LESSONS)
    with pytest.raises(ConfigError, match=r"hash-64.*hash-32.*cannot be mixed"):
        open_memory(tmp_path, embedder=HashEmbedder(32))
    reopened = open_memory(tmp_path, embedder=HashEmbedder(64))
    assert reopened.experience.count() == 3


def test_namespaces_and_bad_locations(tmp_path):
    a = open_memory(tmp_path, embedder=HashEmbedder(64), namespace="run_a")
    b = open_memory(tmp_path, embedder=HashEmbedder(64), namespace="run_b")
    a.experience.add(LESSONS)
    assert b.experience.count() == 0
    with pytest.raises(ConfigError, match="namespace"):
        open_memory(tmp_path, embedder=HashEmbedder(64), namespace="bad name!")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        open_memory(tmp_path / "afile", embedder=HashEmbedder(64))
    with pytest.raises(ConfigError, match="unknown embedder"):
        open_memory(tmp_path, embedder="word2vec")


def test_record_validation():
    with pytest.raises(ValueError, match="reserved"):
        LessonRecord(text="x", metadata={"$bad": 1})
    with pytest.raises(ValueError):
        LessonRecord(text="x", metadata={"nested": {"a": 1}})
    with pytest.raises(ValueError):
        LessonRecord(text="x", unknown_field=1)
    assert ToolCallRecord(tool="t").success and not ToolCallRecord(tool="t", error="boom").success
