"""Smoke of bench/bench_youtu_rollouts.py: its server answers both loops' stages as each parses them, and the
memrl side runs a real `memrl run` process to the end with every group mixed. (The youtu-agent side needs
the anchor's venv, `bench/peers/youtu_setup.sh`; CI has none.)"""

from __future__ import annotations

import json
import re

import httpx

from bench.bench_youtu_rollouts import PeerServer, memrl_side


def _ask(srv: PeerServer, user: str, **body) -> list[str]:
    r = httpx.post(
        f"{srv.api_base}/chat/completions",
        json={"model": "bench", "messages": [{"role": "user", "content": user}], **body},
        timeout=10,
    )
    return [c["message"]["content"] for c in r.json()["choices"]]


def test_the_server_answers_each_stage_in_the_form_its_loop_parses():
    with PeerServer() as srv:
        answers = _ask(srv, "What is 3 + 4?", n=4) + _ask(srv, "What is 3 + 4?")
        boxed = [int(re.findall(r"\\boxed\{(\d+)\}", a)[-1]) for a in answers]
        assert boxed == [7, 8, 7, 8, 7], "every other sample of a question is right"
        adv = _ask(srv, "<Trajectories>\n...\n</Trajectories>")[0]
        assert re.search(r"<Experiences>\s*(.*?)\s*</Experiences>", adv, re.S)
        for marker in ("<Existing Experiences>", "<Experiences and Proposed Operations>"):
            ops = json.loads(_ask(srv, marker)[0].split("```json")[-1].split("```")[0])
            assert ops[0]["operation"] == "ADD" and ops[0]["content"]


def test_the_memrl_side_runs_a_whole_process_with_every_stage():
    with PeerServer() as srv:
        r = memrl_side(srv.api_base, steps=1, batch=4, group=4)
    assert r["rollouts"] == 16 and r["seconds"] > 0 and r["loop_seconds"] > 0
    assert r["calls"]["rollout"] == 16 and r["calls"]["learner"] >= 16, "each mixed group was learned from"
