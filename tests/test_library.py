"""The experience library: stable ids, each edit kind, lineage, versions, rollback, diff, export."""

from __future__ import annotations

import pytest

from memrl.errors import ConfigError
from memrl.library import Library


def test_ids_are_stable_and_never_reused():
    lib = Library()
    a = lib.add("When adding, carry the tens", step=1)
    b = lib.add("When multiplying, check the sign", step=1)
    lib.commit()
    lib.delete(a.id, step=2)
    c = lib.add("When dividing, check for zero", step=2)
    lib.commit()
    assert (a.id, b.id, c.id) == ("L0001", "L0002", "L0003")
    assert lib.get(a.id).status == "retired" and [x.id for x in lib.active()] == ["L0002", "L0003"]


def test_each_edit_kind_changes_the_library_as_specified():
    lib = Library()
    a = lib.add("When adding, carry the tens", step=1, sources=["s1/q1#0"])
    b = lib.add("When adding numbers, carry tens", step=1, sources=["s1/q2#1"])
    u = lib.update(a.id, "When adding multi digit numbers, carry the tens", step=2, sources=["s2/q3#0"])
    assert (
        u.version == 2
        and u.text.startswith("When adding multi")
        and u.source_rollouts == ["s1/q1#0", "s2/q3#0"]
    )
    lib.count_use([b.id], correct=True)
    lib.count_use([a.id], correct=False)
    m = lib.merge(b.id, a.id, step=2)
    assert lib.get(b.id).status == "retired"
    assert m.helpful == 1 and m.harmful == 1 and "s1/q2#1" in m.source_rollouts
    edges = {(x, y, d["kind"]) for x, y, d in lib.graph.edges(data=True)}
    assert ("L0001@2", "L0001@1", "derived-from") in edges
    assert ("L0002@1", "L0001@2", "merged-into") in edges
    with pytest.raises(KeyError):
        lib.update(b.id, "When retired, nothing", step=3)


def test_rollback_restores_a_version_exactly(tmp_path):
    lib = Library()
    lib.add("When adding, carry the tens", step=1)
    lib.add("When subtracting, borrow from the left", step=1)
    v1 = lib.commit()
    before = {k: v.model_dump() for k, v in lib.lessons.items()}
    lib.update("L0001", "When adding, write the carry above", step=2)
    lib.delete("L0002", step=2)
    lib.add("When stuck, restate the question", step=2)
    lib.commit()
    lib.save(tmp_path)
    reloaded = Library.load(tmp_path)
    v3 = reloaded.rollback(v1)
    assert {k: v.model_dump() for k, v in reloaded.lessons.items()} == before
    assert v3 == 3 and reloaded.next_id == 4, "ids handed out after v1 are never handed out again"
    assert reloaded.add("When new, get a new id", step=4).id == "L0004"


def test_diff_lists_added_changed_deleted(tmp_path):
    lib = Library()
    lib.add("When adding, carry the tens", step=1)
    lib.add("When subtracting, borrow from the left", step=1)
    lib.commit()
    lib.update("L0001", "When adding, write the carry above", step=2)
    lib.delete("L0002", step=2)
    lib.add("When stuck, restate the question", step=2)
    lib.commit()
    d = lib.diff(1, 2)
    assert [x.id for x in d.added] == ["L0003"]
    assert [(a.id, b.text) for a, b in d.changed] == [("L0001", "When adding, write the carry above")]
    assert [x.id for x in d.deleted] == ["L0002"]
    with pytest.raises(ConfigError, match="version 9"):
        lib.diff(1, 9)


def test_export_round_trip_keeps_active_lessons(tmp_path):
    lib = Library()
    lib.add("When adding, carry the tens", step=1)
    lib.add("When subtracting, borrow from the left", step=1)
    lib.delete("L0002", step=1)
    lib.commit()
    path = lib.export(tmp_path / "lib.json")
    assert path.with_suffix(".md").read_text().count("**L0001**") == 1
    again = Library.from_export(path)
    assert again.texts() == ["When adding, carry the tens"] and again.next_id == 3
