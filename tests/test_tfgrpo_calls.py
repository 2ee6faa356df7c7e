"""How many model calls a TF-GRPO run makes per rollout, counted at the wire on a fake OpenAI server.

A group of G rollouts to a server at an `api_base` is G single-sample requests (llama.cpp's server ignores
`n`), each seeded from its cache key; nothing is retried or sent twice. The learner then summarises every
rollout of a mixed group once (Training-Free GRPO's first learner call, as in youtu-agent), which is why a
count of the plain-text requests at the server is about twice the rollouts: 514 for 256 rollouts in the
issue 18 measurement was 256 rollouts + 256 summaries + 2 evaluation answers.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.spec import spec_from_mapping
from memrl.testing import FakeOpenAIServer

STEPS, BATCH, GROUP = 2, 2, 4


def kind(body: dict[str, Any]) -> str:
    if body.get("response_format"):
        return "learner_json"
    if body["messages"][0]["content"].startswith("You review attempts"):  # prompts/tfgrpo_summarize.yaml
        return "summary"
    return "eval" if body.get("temperature") == 0 else "rollout"


def answer(body: dict[str, Any]) -> str:
    k = kind(body)
    if k == "summary":
        return "The attempt added the two numbers."
    if k == "learner_json":
        props = body["response_format"]["schema"]["properties"]
        if "lessons" in props:
            return json.dumps({"lessons": ["When adding, count on from the larger number"]})
        return json.dumps({"operations": [{"op": "ADD", "content": "When adding, check the carry"}]})
    a, b = map(int, re.findall(r"\d+", body["messages"][-1]["content"])[:2])
    return str(a + b + (body.get("seed", 0) % 2))  # right for even seeds, wrong for odd


def test_one_request_per_rollout_and_one_summary_per_learned_rollout(tmp_path):
    data = tmp_path / "sums.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": f"What is {i} + {i + 2}?", "answer": str(2 * i + 2)})
            + "\n"
            for i in range(1, 10)
        )
    )
    with FakeOpenAIServer(responder=answer) as srv:
        spec = spec_from_mapping(
            {
                "name": "calls", "algorithm": "tfgrpo",
                "model": {"name": "openai/fake", "api_base": srv.api_base, "max_concurrency": 4},
                "data": {"source": str(data), "test_size": 1},
                "eval": {"k": 1, "max_tokens": 16, "temperature": 0.0},
                "tfgrpo": {"epochs": 1, "batch_size": BATCH, "group_size": GROUP, "steps_per_epoch": STEPS},
                "run": {"dir": str(tmp_path / "runs")},
                "diversity": {"embedder": "hash-64"},
            },
            base_dir=tmp_path,
        )  # fmt: skip
        client = LiteLLMClient("openai/fake", api_base=srv.api_base, local=True)
        res = run_task(spec, run_dir=tmp_path / "run", client=client)
        bodies = [r["body"] for r in srv.requests]
    assert res.status == "finished", res.message
    run = RunDir(tmp_path / "run")
    groups = [g for s in range(1, STEPS + 1) for g in run.read_json(f"rollouts/step-{s:04d}.json")]
    mixed = sum(0 < sum(r["verdict"]["correct"] for r in g) < len(g) for g in groups)
    rollouts = STEPS * BATCH * GROUP
    assert sum(len(g) for g in groups) == rollouts and mixed > 0

    kinds = Counter(kind(b) for b in bodies)
    assert kinds["rollout"] == rollouts  # one HTTP request per rollout
    assert kinds["summary"] == GROUP * mixed  # one per rollout of a group the learner learns from
    assert kinds["eval"] == 2  # the held-out item before and after learning
    rollout_bodies = [b for b in bodies if kind(b) == "rollout"]
    assert all(b.get("n", 1) == 1 for b in bodies)  # no n-sample request to a server that may ignore n
    # each rollout request is seeded from its own cache key: distinct samples, none sent twice
    sent = Counter((json.dumps(b["messages"]), b["seed"]) for b in rollout_bodies)
    assert set(sent.values()) == {1}

    # the ledger counts what the server saw: no retries, no duplicates, rollouts under their own phase
    usage = res.usage
    assert usage["rollout"]["calls"] == rollouts and usage["rollout"]["cached_calls"] == 0
    assert usage["total"]["calls"] == len(bodies) == sum(kinds.values())
