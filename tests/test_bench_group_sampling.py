"""bench_group_sampling merges its figures into bench/results/performance.json, keeping every other key, each
with the value, the command that produced it, the date and the load."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench" / "bench_group_sampling.py"


def test_save_merges_the_figures_and_keeps_other_keys(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_group_sampling", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr("sys.argv", ["bench_group_sampling.py", "--repeats", "3"])
    med = {
        (bench.NEW, "rollouts"): 1.66,
        (bench.NEW, "eval"): 1.57,
        (bench.PER, "rollouts"): 1.24,
        (bench.PER, "eval"): 1.33,
    }
    path = tmp_path / "results" / "performance.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"other_bench": {"value": 7}}))
    bench.save(bench.figures(med), (1.0, 2.0, 3.0), path)
    data = json.loads(path.read_text())
    assert data["other_bench"] == {"value": 7}
    entry = data["group_sampling_ratio"]
    assert set(entry) == {"value", "command", "date", "load"}
    assert entry["value"] == 1.57, "the smaller of rollouts and eval"
    assert entry["command"] == "python bench/bench_group_sampling.py --repeats 3" and entry["load"] == [
        1.0,
        2.0,
        3.0,
    ]
    assert data["group_sampling_rollouts_ratio"]["value"] == 1.66
    assert data["group_sampling_eval_ratio_per_sample"]["value"] == 1.33
    assert not list(path.parent.glob("*.tmp"))
