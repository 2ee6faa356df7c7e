"""LibraryStore: the run-folder store (one writer) and the shared store's rules, with two writers in one
process on an in-memory backend (the two-process tests on a real chroma server are in
test_library_store_shared.py)."""

from __future__ import annotations

import pytest

from memrl.errors import ConfigError
from memrl.library import Library
from memrl.library.store import ChromaLibraryStore, JsonFolderStore, LibraryStore
from memrl.memory import HashEmbedder, LessonRecord, open_memory


def test_both_stores_are_library_stores(tmp_path):
    mem = open_memory(":memory:", embedder=HashEmbedder(16))
    assert isinstance(JsonFolderStore(tmp_path), LibraryStore) and not JsonFolderStore(tmp_path).shared
    assert isinstance(ChromaLibraryStore(mem), LibraryStore) and ChromaLibraryStore(mem).shared


def test_json_folder_store_round_trip_and_one_writer(tmp_path):
    a = JsonFolderStore(tmp_path)
    lib = a.load()
    lib.add("check units", step=1)
    lib.commit()
    assert a.save(lib).written == ["L0001"]
    lib.count_use(["L0001"], correct=True)
    report = a.save(lib)
    assert report.written == [] and report.counted == 2
    b = JsonFolderStore(tmp_path)
    other = b.load()
    assert other.get("L0001").helpful == 1
    other.add("draw a diagram", step=2)
    b.save(other)
    with pytest.raises(ConfigError, match="one writer"):
        a.save(lib)  # would drop b's lesson
    assert a.new_id() == "L0003" and a.new_id() == "L0004"


def test_two_writers_share_ids_counters_and_edits():
    mem = open_memory(":memory:", embedder=HashEmbedder(16))
    mem.experience.add([LessonRecord(id="L0001", text="check units", helpful=3, uses=3)])  # before the ledger
    one, two = ChromaLibraryStore(mem), ChromaLibraryStore(mem)
    a, b = one.load(), two.load()
    assert a.get("L0001").helpful == 3
    new_a, new_b = a.add("simplify first", step=1), b.add("draw a diagram", step=1)
    assert new_a.id != new_b.id and {new_a.id, new_b.id} == {"L0002", "L0003"}
    a.count_use(["L0001"], correct=True)
    b.count_use(["L0001"], correct=True)
    b.count_use(["L0001"], correct=False)
    a.update("L0001", "check the units of every quantity", step=1)
    b.update("L0001", "units matter", step=1)
    ra, rb = one.save(a), two.save(b)
    assert ra.conflicts == [] and rb.conflicts == ["L0001"], "the first edit of a revision wins"
    assert ra.counted == 2 and rb.counted == 4
    for store in (one, two, ChromaLibraryStore(mem)):
        lib = store.load()
        assert sorted(x.text for x in lib.active()) == [
            "check the units of every quantity",
            "draw a diagram",
            "simplify first",
        ]
        first = lib.get("L0001")
        assert (first.helpful, first.harmful, first.uses, first.version) == (5, 1, 6, 2)
    again = one.load()
    again.count_use(["L0001"], correct=True)
    one.save(again)
    one.save(again)  # saving twice adds nothing twice
    assert two.load().get("L0001").helpful == 6


def test_new_lessons_need_ids_from_the_store():
    mem = open_memory(":memory:", embedder=HashEmbedder(16))
    store = ChromaLibraryStore(mem)
    lib = store.load()
    lib.add("check units", step=1)
    store.save(lib)
    foreign = Library()
    foreign.add("draw a diagram", step=1)  # L0001 too, not from the store
    with pytest.raises(ConfigError, match="L0001 is taken"):
        ChromaLibraryStore(mem).save(foreign)
