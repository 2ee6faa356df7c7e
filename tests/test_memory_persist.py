"""Persistence across processes with the real offline embedder, export/import, stats and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from memrl.errors import DataError
from memrl.memory import (
    CaseRecord,
    HashEmbedder,
    LessonRecord,
    ToolCallRecord,
    export_memory,
    import_memory,
    load_export,
    memory_stats,
    open_memory,
)
from memrl.memory.cli import memory_app

FACTS = [
    "Convert all quantities to SI units before computing.",
    "Fractions need a common denominator before they are added.",
    "For probability questions, count the favourable and the total outcomes.",
    "When a list must be sorted, check whether the order is ascending or descending.",
    "Quote the exact number the question asks for, with no extra words.",
    "A triangle's angles add up to 180 degrees.",
]
QUERIES = ["adding one half and one third", "how likely is rolling a six", "the angles of a triangle"]

NEIGHBOURS = textwrap.dedent(
    """
    import json, sys
    import chromadb
    from memrl.memory import open_memory
    import memrl.memory.chroma  # registers memrl's embedding function with chromadb
    path, queries = sys.argv[1], json.loads(sys.argv[2])
    lib = open_memory(path).experience
    ours = [[h.record.id for h in lib.query(q, k=3)] for q in queries]
    sims = [[round(h.similarity, 5) for h in lib.query(q, k=3)] for q in queries]
    col = chromadb.PersistentClient(path).get_collection("memrl-default-experience")  # no embedding function given
    raw = col.query(query_texts=queries, n_results=3)["ids"]
    print(json.dumps({"ours": ours, "sims": sims, "raw": raw}))
    """
)


def test_reopened_in_a_new_process_returns_the_same_neighbours(tmp_path):
    lib = open_memory(tmp_path).experience  # the offline default embedder
    lib.add([LessonRecord(id=f"f{i}", text=t) for i, t in enumerate(FACTS)])
    here = [[h.record.id for h in lib.query(q, k=3)] for q in QUERIES]
    sims = [[round(h.similarity, 5) for h in lib.query(q, k=3)] for q in QUERIES]
    assert [ids[0] for ids in here] == ["f1", "f2", "f5"]
    out = subprocess.run(
        [sys.executable, "-c", NEIGHBOURS, str(tmp_path), json.dumps(QUERIES)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["ours"] == here and there["sims"] == sims
    assert there["raw"] == here  # plain chromadb rebuilt memrl's embedder from the collection's config


def _fill(mem):
    mem.experience.add([LessonRecord(id="l1", text="check units", source_rollouts=["r1", "r2"], helpful=2)])
    mem.cases.add(
        [CaseRecord(id="c1", task="sum 2 and 3", trajectory=["2+3", "5"], reward=1.0, success=True)]
    )
    mem.tools.add([ToolCallRecord(id="t1", tool="calc", args_summary="2+3", error="timeout", latency_s=1.5)])


def test_export_import_round_trip(tmp_path):
    src = open_memory(tmp_path / "a", embedder=HashEmbedder(64))
    _fill(src)
    doc = export_memory(src, tmp_path / "mem.json")
    assert doc["schema_version"] == 1 and json.loads((tmp_path / "mem.json").read_text()) == doc
    dst = open_memory(tmp_path / "b", embedder=HashEmbedder(32))  # another embedder: import re-embeds
    assert import_memory(dst, tmp_path / "mem.json") == {
        "experience": 1,
        "cases": 1,
        "subtasks": 0,
        "tools": 1,
    }
    for kind, store in src.stores().items():
        assert store.all() == dst.stores()[kind].all()
    assert dst.cases.query("sum 2 and 3", k=1)[0].similarity > 0.99
    dst.experience.add([LessonRecord(id="extra", text="x")])
    import_memory(dst, doc, mode="replace")
    assert [r.id for r in dst.experience.all()] == ["l1"]


def test_export_versions_are_checked(tmp_path):
    mem = open_memory(":memory:", embedder=HashEmbedder(16))
    _fill(mem)
    doc = export_memory(mem)
    with pytest.raises(DataError, match="newer"):
        load_export({**doc, "schema_version": 99})
    with pytest.raises(DataError, match="format"):
        load_export({"schema_version": 1})
    bad = {**doc, "stores": {"experience": [{"id": "x"}]}}
    with pytest.raises(DataError, match="experience record #0"):
        import_memory(mem, bad)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DataError, match="cannot read"):
        load_export(tmp_path / "broken.json")


def test_stats_and_cli(tmp_path):
    mem = open_memory(tmp_path, embedder=HashEmbedder(64))
    _fill(mem)
    mem.experience.mark_used(["l1"])
    stats = memory_stats(tmp_path)
    by_kind = {s.kind: s for s in stats.stores}
    assert stats.total_records == 3 and stats.disk_bytes > 0
    lessons = by_kind["experience"]
    assert (lessons.count, lessons.helpful, lessons.active, lessons.uses, lessons.never_used) == (
        1,
        2,
        1,
        1,
        0,
    )
    assert lessons.embedder == "hash-64" and lessons.text_bytes == len("check units")
    assert by_kind["cases"].oldest_age_s >= 0 and by_kind["subtasks"].count == 0
    result = CliRunner().invoke(memory_app, ["stats", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "experience" in result.output and "hash-64" in result.output and "3 records" in result.output
    result = CliRunner().invoke(memory_app, ["stats", "--json", str(tmp_path)])
    assert json.loads(result.output)["stores"][0]["kind"] == "cases"
    for not_memory in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        result = CliRunner().invoke(memory_app, ["stats", str(not_memory)])
        assert result.exit_code == 1 and "no memory directory" in result.output
    assert list((tmp_path / "empty").iterdir()) == []  # stats never creates a database
