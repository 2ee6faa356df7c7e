"""Before/after on the same items: the paired difference, its interval and the plain verdict a run prints."""

from __future__ import annotations

import json
import re

import pytest

from memrl.llm.base import Request
from memrl.metrics import paired_difference
from memrl.runner import run_task
from memrl.spec import spec_from_mapping
from memrl.testing import FunctionClient


def test_paired_difference_interval_counts_and_verdict():
    same = paired_difference([1, 0, 1, 0], [1, 0, 1, 0])
    assert (same.diff, same.lo, same.hi, same.wins, same.losses) == (0, 0, 0, 0, 0)
    assert same.verdict == "no significant change" and same.p_mcnemar == 1.0
    better = paired_difference([0] * 20, [1] * 12 + [0] * 8)
    assert better.diff == pytest.approx(0.6) and better.lo > 0 and better.verdict == "improved"
    assert better.wins == 12 and better.p_mcnemar == pytest.approx(2 / 2**12)
    worse = paired_difference([1] * 20, [0] * 12 + [1] * 8)
    assert worse.verdict == "worse" and "0 items better, 12 worse): worse" in worse.sentence()
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1], [1, 0])


def test_a_run_that_learns_nothing_reports_exactly_no_change_even_when_sampling(tmp_path):
    """Same seeds for every evaluation of an item: unchanged prompts give the same answers at T = 0.7."""
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{a}", "question": f"What is {a} + 2?", "answer": str(a + 2)}) + "\n"
                            for a in range(12)))  # fmt: skip
    spec = spec_from_mapping({
        "name": "nothing", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 6, "seed": 0}, "eval": {"k": 4, "temperature": 0.7},
        "tfgrpo": {"steps_per_epoch": 1, "batch_size": 2, "group_size": 2}, "diversity": {"embedder": "hash-64"},
    }, base_dir=tmp_path)  # fmt: skip

    def answer(req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        if req.json_schema:  # the learner proposes nothing usable
            return "{}"
        if "Summarise" in user:
            return "It added."
        a = int(re.findall(r"\d+", user)[0])
        return str(a + 2 + (seed or 0) % 2)  # right on even seeds only

    res = run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(answer))
    learned = res.results["learning"]
    assert learned["lessons"] == 0
    assert learned["paired"]["diff"] == 0 and learned["paired"]["verdict"] == "no significant change"
    assert learned["mean_at_k_before"] == learned["mean_at_k_after"]
