"""The efficacy bench: its paired statistics, and its smoke size end to end on the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.efficacy import paired  # noqa: E402
from bench.pool_efficacy import pooled_rows  # noqa: E402


def test_paired_difference_and_mcnemar():
    r = paired([0, 0, 1, 1, 0], [1, 1, 1, 0, 0])
    assert r["diff"] == pytest.approx(0.2)
    assert (r["wins"], r["losses"]) == (2, 1)
    assert r["p_mcnemar"] == pytest.approx(1.0)  # 2 · P(X ≤ 1 | 3, ½) = 2 · 4/8, capped at 1
    assert r["lo"] < 0.2 < r["hi"]
    r = paired([0] * 10, [1] * 6 + [0] * 4)
    assert r["p_mcnemar"] == pytest.approx(2 / 64)
    assert r["diff"] == pytest.approx(0.6) and r["lo"] > 0
    same = paired([1, 0, 1], [1, 0, 1])
    assert same["diff"] == 0 and same["p_mcnemar"] == 1.0 and same["lo"] == same["hi"] == 0


def test_runs_of_two_split_seeds_pool_by_item():
    def run(seed: int, base: list[float], cond: list[float]) -> dict:
        rows = lambda scores: [{"id": f"s{seed}-{i}", "score": x} for i, x in enumerate(scores)]  # noqa: E731
        return {"conditions": {"tool": {"items": rows(base)}, "tool+cases": {"items": rows(cond)}}}

    rows = pooled_rows([run(1, [0, 1], [1, 1]), run(2, [1, 0, 0], [1, 0, 1])], "tool", "tool+cases")
    assert [(i, b, c) for i, b, c in rows if b != c] == [("s1-0", 0, 1), ("s2-2", 0, 1)]
    assert len(rows) == 5
    with pytest.raises(ValueError, match="different split seeds"):
        pooled_rows([run(1, [0], [1]), run(1, [0], [1])], "tool", "tool+cases")


@pytest.mark.timeout(900)
def test_smoke_runs_every_condition_on_the_same_held_out_items(tmp_path):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "eff"
    env = os.environ | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "bench/efficacy.py", "--smoke", "--out", str(out), "--only", "cases,cases-q,lessons+cases,memrl,gepa"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=880,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    conds = res["conditions"]
    assert list(conds) == ["none", "tool", "cases", "lessons+cases", "cases-q", "memrl", "gepa"]
    assert {c["n"] for c in conds.values()} == {res["held_out"]} == {6}
    for name in ("cases", "lessons+cases", "cases-q", "memrl"):
        assert conds[name]["epoch0_matches_baseline"], (
            f"{name}: epoch-0 answers differ from `none` or `tool` (cache not shared?)"
        )
        assert conds[name]["rollouts"] == 4  # 1 step × 2 queries × 2 rollouts, as in the task file
        assert "vs_none" in conds[name]
    assert "vs_tool" in conds["memrl"] and "vs_tool" not in conds["cases"]
    assert conds["gepa"]["rollouts"] <= 4
    table = (out / "table.md").read_text()
    assert all(f"| {n} |" in table for n in conds)
    assert (out / "efficacy.png").stat().st_size > 0
    # a second run resumes: nothing is recomputed
    again = subprocess.run(
        [sys.executable, "bench/efficacy.py", "--smoke", "--out", str(out), "--only", "cases,cases-q,lessons+cases,memrl,gepa"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and again.stdout.count("done earlier (resumed)") == 7
