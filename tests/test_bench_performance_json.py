"""bench_tfgrpo_step merges its figure into bench/results/performance.json, keeping every other key."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench" / "bench_tfgrpo_step.py"


def test_save_merges_the_ratio_and_keeps_other_keys(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_tfgrpo_step", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr("sys.argv", ["bench_tfgrpo_step.py", "--repeats", "3"])
    path = tmp_path / "results" / "performance.json"
    bench.save(1.23456, (0.5, 0.25, 0.125), path)  # creates the file
    path.write_text(json.dumps(json.loads(path.read_text()) | {"other_bench": {"value": 7}}))
    bench.save(1.04, (1.0, 2.0, 3.0), path)
    data = json.loads(path.read_text())
    assert data["other_bench"] == {"value": 7}
    entry = data["tfgrpo_overhead_ratio"]
    assert set(entry) == {"value", "command", "date", "load"}
    assert entry["value"] == 1.04 and entry["load"] == [1.0, 2.0, 3.0]
    assert entry["command"] == "python bench/bench_tfgrpo_step.py --repeats 3"
    assert not list(path.parent.glob("*.tmp"))
