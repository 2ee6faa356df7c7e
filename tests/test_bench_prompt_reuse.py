"""bench_prompt_reuse: its figures merge into performance.json, and its smoke size runs end to end on the
embedded model (token counts checked, no timing thresholds)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_local

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_prompt_reuse.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_prompt_reuse", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_save_merges_the_figures_and_keeps_other_keys(tmp_path, monkeypatch):
    bench = _bench()
    monkeypatch.setattr("sys.argv", ["bench_prompt_reuse.py", "--threads", "1"])
    path = tmp_path / "results" / "performance.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"tfgrpo_overhead_ratio": {"value": 1.2}}))
    bench.save({"prompt_reuse_share": 0.91234, "prompt_cache_eval_ratio": 1.1}, (1.0, 2.0, 3.0), path)
    data = json.loads(path.read_text())
    assert data["tfgrpo_overhead_ratio"] == {"value": 1.2}
    entry = data["prompt_reuse_share"]
    assert set(entry) == {"value", "command", "date", "load"}
    assert entry["value"] == 0.912 and entry["load"] == [1.0, 2.0, 3.0]
    assert entry["command"] == "python bench/bench_prompt_reuse.py --threads 1"
    assert data["prompt_cache_eval_ratio"]["value"] == 1.1
    assert not list(path.parent.glob("*.tmp"))


@needs_local
@pytest.mark.timeout(400)
def test_smoke_counts_reuse_in_every_scenario(tmp_path):
    out = tmp_path / "figures.json"
    env = os.environ | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    before = (ROOT / "bench" / "results" / "performance.json").read_bytes()
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--threads", "1", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "load average:" in proc.stdout and "RAM cache on / off" in proc.stdout
    res = json.loads(out.read_text())
    reuse = res["reuse"]
    assert set(reuse) == {"off/eval", "off/ranked", "off/inter", "on/eval", "on/inter"}
    assert {reuse[k]["requests"] for k in ("off/eval", "off/ranked", "on/eval")} == {2}  # 2 items x 1 sample
    assert reuse["off/inter"]["requests"] == reuse["on/inter"]["requests"] == 4  # 2 conversations x 2 turns
    # the second item's prompt shares the system text and the whole lesson block with the first
    assert reuse["off/eval"]["reused_tokens"] >= 150
    assert reuse["off/eval"]["reused_tokens"] >= reuse["off/ranked"]["reused_tokens"]  # ranked parts sooner
    assert reuse["on/eval"] == reuse["off/eval"], "the same requests in the same order reuse the same prefix"
    assert reuse["on/inter"]["state_loads"] >= 1, "lockstep turns find their own conversation's saved state"
    assert reuse["on/inter"]["reused_tokens"] > reuse["off/inter"]["reused_tokens"]
    assert set(res["figures"]) == {
        "prompt_reuse_share", "prompt_reuse_share_ranked", "prompt_order_eval_ratio",
        "prompt_cache_eval_ratio", "prompt_cache_interleaved_ratio",
    }  # fmt: skip
    assert res["rss_mb"]["on"] > 0
    assert (ROOT / "bench" / "results" / "performance.json").read_bytes() == before, (
        "a smoke run saves nothing"
    )
