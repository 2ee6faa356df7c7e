"""The youtu-agent Training-Free GRPO peer, end to end, against a deterministic stub model.

Runs the real anchor (its own venv and clone, built by bench/peers/youtu_setup.sh), so it is skipped where
that setup is absent (CI). The stub answers each stage of the anchor by the markers of its prompts: rollouts
alternate right and wrong per question (every group is partially correct), the updater stages return
well-formed <Experiences> blocks and JSON operation lists."""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.peers import youtu_peer
from bench.peers.base import PeerContext
from memrl.prompts import render
from memrl.testing import FakeOpenAIServer
from memrl.types import Item

needs_anchor = pytest.mark.skipif(
    not youtu_peer.is_set_up(), reason="youtu-agent is not set up (bench/peers/youtu_setup.sh)"
)

SYSTEM = "Solve the arithmetic problem. End with the final number in \\boxed{}."
TEMPLATE = "Question: {{ question }}"
ITEMS = [("17 + 25", "42"), ("9 * 8", "72"), ("100 - 37", "63"), ("144 / 12", "12")]


class StubModel:
    """mockllm of YOUTU-OFFLINE.md §3 as a FakeOpenAIServer responder."""

    def __init__(self, crash_batch_updates: int = 0) -> None:
        self.crash_batch_updates = crash_batch_updates  # answer this many batch updates with non-objects
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.rollout_requests: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> str:
        user = "\n".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user")
        kind = youtu_peer._classify(body)
        with self.lock:
            self.kinds[kind] += 1
        if kind == "rollout":
            with self.lock:
                self.rollout_requests.append(body)
            m = re.search(r"What is ([0-9+\-*/ ().]+)\?", user)
            expr = m.group(1).strip() if m else "0"
            with self.lock:
                self.attempts[expr] += 1
                n = self.attempts[expr]
            val = eval(expr, {"__builtins__": {}})  # the stub's own arithmetic, on its own strings
            val = int(val) if float(val).is_integer() else val
            if n % 2 == 0:
                val += 1  # every second attempt is wrong
            return f"Compute {expr} step by step.\n<answer>\n\\boxed{{{val}}}\n</answer>"
        if kind == "rollout_summary":
            return "Execution Summary: computed directly.\nKey Findings:\n- Re-check the last operation."
        if kind == "group_advantage":
            q = re.search(r"<Agent Input>\s*(.*?)\s*</Agent Input>", user, re.S)
            what = re.search(r"What is ([^?]*)\?", q.group(1) if q else "")
            label = what.group(1) if what else "?"
            return (
                f"<Experiences>\n1. Re-check arithmetic ({label}): recompute the final operation before "
                "boxing; {{ braces }} stay literal.\n</Experiences>"
            )
        if kind == "group_update":
            new = re.search(r"<New Experiences>\s*(.*?)\s*</New Experiences>", user, re.S)
            content = re.sub(r"^\d+\.\s*", "", new.group(1) if new else "Recheck").strip()
            return "```json\n" + json.dumps([{"operation": "ADD", "id": None, "content": content}]) + "\n```"
        with self.lock:
            crash, self.crash_batch_updates = (
                self.crash_batch_updates > 0,
                max(0, self.crash_batch_updates - 1),
            )
        if crash:  # valid JSON whose items are not objects: the anchor's AttributeError crash
            return '```json\n["ADD everything"]\n```'
        ops = re.findall(r'"content": "(.*?)"', user)  # batch update: keep the proposed ADDs
        plan = [{"operation": "ADD", "id": None, "content": json.loads(f'"{c}"')} for c in ops]
        return "```json\n" + json.dumps(plan) + "\n```"


def score(item: Item, text: str) -> float:
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    return 1.0 if boxed and boxed[-1].strip() == item.answer else 0.0


def no_chat(messages: list[dict[str, str]], temperature: float, max_tokens: int) -> tuple[str, int, int]:
    raise AssertionError("the youtu peer brings its own client")


def make_ctx(tmp_path: Path, api_base: str) -> PeerContext:
    return PeerContext(
        train=[Item(id=f"a{i}", question=f"What is {e}?", answer=a) for i, (e, a) in enumerate(ITEMS)],
        system=SYSTEM,
        template=TEMPLATE,
        score=score,
        chat=no_chat,
        api_base=api_base,
        model_alias="stub",
        budget_rollouts=8,
        max_tokens=96,
        temperature=0.5,
        workdir=tmp_path / "youtu",
    )


def test_plan_spends_the_budget() -> None:
    p = youtu_peer.plan_steps(4, 8, grpo_n=4, batch_size=4)
    assert (p.batch_size, p.steps, p.epochs, p.truncate, p.rollouts) == (2, 1, 1, 2, 8)
    p = youtu_peer.plan_steps(40, 160)
    assert (p.batch_size, p.steps, p.epochs, p.truncate, p.rollouts) == (4, 10, 1, 40, 160)
    p = youtu_peer.plan_steps(10, 96)  # 6 steps of 4 items over 10 items: 3 epochs of the first 8
    assert (p.batch_size, p.steps, p.epochs, p.truncate, p.rollouts) == (4, 6, 3, 8, 96)
    with pytest.raises(ValueError):
        youtu_peer.plan_steps(4, 3)


def test_template_escapes_jinja() -> None:
    t = youtu_peer.experience_template("Q: {{ question }}", {"G1": "b {{ x }}", "G0": "a {% if %}"})
    out = render(t, question="What is 1+1?", meta={})
    assert out.startswith("Please solve the problem:\nQ: What is 1+1?\n\nWhen solving problems, you MUST")
    assert out.endswith("[G0]. a {% if %}\n[G1]. b {{ x }}")
    t = youtu_peer.experience_template("{{ question }}", {"G0": "{% endraw %} {{ y }}"})
    assert render(t, question="q", meta={}).endswith("[G0]. {% endraw %} {{ y }}")
    assert render(youtu_peer.experience_template("{{ question }}", {}), question="q", meta={}).endswith(
        "None"
    )


def _connections_held(address: tuple[str, int], n: int, wait_s: float = 0.5) -> int:
    """How many of `n` simultaneous connects to a listening socket that accepts none complete: what its
    listen backlog holds (Linux drops the SYNs beyond it; the clients wait for a retry, a second or more)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.setblocking(False)
            s.connect_ex(address)
        pending, held, end = set(socks), 0, time.monotonic() + wait_s
        while pending and time.monotonic() < end:
            _, ready, _ = select.select([], list(pending), [], max(0.0, end - time.monotonic()))
            for s in ready:
                held += s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                pending.discard(s)
        return held
    finally:
        for s in socks:
            s.close()


def test_proxy_holds_a_burst_of_connections(tmp_path: Path) -> None:
    """The counting proxy's listen backlog holds the anchor's concurrent calls (Python's default of 5
    held 6 of 64 here; the rest waited for a SYN retry)."""
    proxy = youtu_peer._Proxy(make_ctx(tmp_path, "http://127.0.0.1:9"), tmp_path / "calls.jsonl")
    proxy.httpd.shutdown()  # stop accepting; the socket keeps listening
    try:
        assert _connections_held(proxy.httpd.server_address, 64) == 64
    finally:
        proxy.httpd.server_close()


@needs_anchor
def test_learn_against_stub(tmp_path: Path) -> None:
    stub = StubModel()
    with FakeOpenAIServer(responder=stub) as server:
        ctx = make_ctx(tmp_path, server.api_base)
        res = youtu_peer.learn(ctx)

        assert res.name == "youtu-tfgrpo"
        assert res.rollouts == 8
        assert stub.kinds["rollout"] == 8
        assert res.calls == len(server.requests) == sum(stub.kinds.values())
        assert res.prompt_tokens == 10 * res.calls and res.completion_tokens == 5 * res.calls
        assert res.system == SYSTEM
        # rollouts ran with the ctx's sampling settings and the task's template inside the anchor's form
        assert {r["max_tokens"] for r in stub.rollout_requests} == {96}
        assert {r["temperature"] for r in stub.rollout_requests} == {0.5}
        first = stub.rollout_requests[0]["messages"]
        assert first[0] == {"role": "system", "content": SYSTEM}
        assert "Please solve the problem:\nQuestion: What is" in first[-1]["content"]

        exps = res.detail["experiences"]
        assert exps and all(e.startswith("[G") for e in exps)
        assert res.detail["steps"] == 1 and res.detail["grpo_n"] == 4 and res.detail["batch_size"] == 2
        assert res.detail["scored_by_task_verifier"] == 8
        assert res.detail["mean_reward_per_epoch"] == [0.5]
        text = render(res.template, question="What is 2 + 2?", meta={})
        assert text.startswith("Please solve the problem:\nQuestion: What is 2 + 2?\n\nWhen solving problems")
        for e in exps:
            assert e in text
        assert "{{ braces }} stay literal" in text  # experience text is not jinja

        # the clone is left as it was found: our per-run configs and the anchor's output are gone
        clone, _ = youtu_peer.anchor_paths()
        tag = res.detail["experiment_name"]
        assert not list(clone.glob(f"configs/**/{tag}*.yaml"))
        assert (ctx.workdir / "youtu_agent.yaml").exists()

        # the same workdir gives the same result without a model call
        n = len(server.requests)
        assert youtu_peer.learn(ctx) == res
        # and with the result file gone, the anchor resumes from its DB cache: still no model call
        (ctx.workdir / "youtu_result.json").unlink()
        again = youtu_peer.learn(ctx)
        assert len(server.requests) == n
        assert again.detail["experiences"] == exps and again.calls == res.calls and again.rollouts == 8
        assert again.detail["scored_by_task_verifier"] == 8 and len(again.detail["runs"]) == 2
        assert again.seconds >= res.seconds * 0.5


@needs_anchor
def test_resumes_after_an_anchor_crash(tmp_path: Path) -> None:
    stub = StubModel(crash_batch_updates=1)
    with FakeOpenAIServer(responder=stub) as server:
        res = youtu_peer.learn(make_ctx(tmp_path, server.api_base))
    runs = res.detail["runs"]
    assert [r["known_crash"] for r in runs] == ["batch_update_non_object", None] and runs[1]["rc"] == 0
    assert res.detail["resumed_after_crash"]
    assert stub.kinds["rollout"] == 8 and res.rollouts == 8  # the resume reused the cached rollouts
    assert stub.kinds["batch_update"] == 2 and res.calls == len(server.requests)
    assert res.detail["experiences"]


def test_not_set_up_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTU_VENV", str(tmp_path / "none"))
    with pytest.raises(RuntimeError, match=r"youtu-agent is not set up: run bench/peers/youtu_setup.sh"):
        youtu_peer.learn(make_ctx(tmp_path, "http://127.0.0.1:1/v1"))
