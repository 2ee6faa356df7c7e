"""Dedup-merge: protected lessons stay apart from neighbours, but an exact copy of an earlier lesson merges."""

from __future__ import annotations

from memrl.inject import LessonVectors
from memrl.library import Library
from memrl.library.controls import dedup_merge
from memrl.memory.embed import make_embedder
from memrl.spec import DiversitySpec

TEXT = "When a problem has several steps, solve each part in order and check each result"


def test_protected_copy_merges_but_protected_neighbour_stays():
    cfg = DiversitySpec(embedder="hash-64")
    assert cfg.protect_rare_success
    lib = Library()
    first = lib.add(TEXT, step=1, advantage=0.9, rare_success=True)
    copy = lib.add(TEXT, step=1, advantage=0.9, rare_success=True)  # protected, identical
    other = lib.add("When units differ, convert them before adding", step=1, advantage=0.9, rare_success=True)
    merged = dedup_merge(lib, LessonVectors(make_embedder("hash-64")), cfg, step=1)
    assert merged == [(copy.id, first.id)]
    assert {x.id for x in lib.active()} == {first.id, other.id}
