"""verifier.kind llm_judge: the judge model's verdicts score the answers; an unreadable verdict scores 0."""

from __future__ import annotations

import json
import re

from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import spec_from_mapping
from memrl.testing import FunctionClient


def test_llm_judge_scores_through_the_run(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": f"Name {i}", "answer": f"A{i}"}) + "\n" for i in range(6)
        )
    )

    def answer(req, seed):
        user = req.messages[-1].content
        if req.json_schema and "correct" in req.json_schema["properties"]:
            ref = re.search(r"Reference answer:\s*(\S+)", user).group(1)
            got = re.search(r"Answer to grade:\s*(\S+)", user).group(1)
            if ref == "A3":
                return "not json at all"
            return json.dumps({"reason": "compared", "correct": ref == got})
        n = int(re.search(r"Name (\d+)", user).group(1))
        return f"A{n}" if n % 2 == 0 else "wrong"

    spec = spec_from_mapping(
        {
            "name": "j",
            "data": {"source": str(data), "test_size": 6},
            "verifier": {"kind": "llm_judge"},
            "eval": {"k": 1},
            "run": {"dir": str(tmp_path)},
        },  # fmt: skip
        base_dir=tmp_path,
    )
    res = run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(answer))
    rows = {r["item_id"]: r["verdicts"][0] for r in RunDir(tmp_path / "r").read_jsonl("eval-test.jsonl")}
    assert {k: v["correct"] for k, v in rows.items()} == {
        "q0": True,
        "q1": False,
        "q2": True,
        "q3": False,
        "q4": True,
        "q5": False,
    }
    assert "could not be read" in rows["q3"]["reason"]
    assert res.usage["judge"]["calls"] >= 6
