"""The fault-injecting server at the wire, and a soak: a Training-Free GRPO run through thousands of
faulty requests loses no rollout and pays for no answer twice."""

from __future__ import annotations

import json

import pytest

from memrl.llm.base import Request
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.managed import ManagedLLM, RetryPolicy
from memrl.testing import FakeOpenAIServer
from memrl.testing.faults import FAULT_KINDS, FaultInjector, FaultMix, run_soak, toy_answer
from memrl.types import Message

REQ = Request.of([Message.user("What is 2 + 5?")], temperature=0.0, max_tokens=8)
ANSWERS = ("content_filter", "slow")  # faults that still answer: no retry


def managed(server: FakeOpenAIServer) -> ManagedLLM:
    client = LiteLLMClient("openai/fake", api_base=server.api_base, timeout_s=1.0, local=True)
    return ManagedLLM(client, name="fake", retry=RetryPolicy(max_attempts=3, max_wait_s=0.1, initial_s=0.01))


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_each_fault_kind_at_the_wire(kind):
    mix = FaultMix()
    with FakeOpenAIServer([mix.action(kind)], responder=toy_answer) as srv:
        llm = managed(srv)
        out = await llm.complete(REQ, phase="rollout")
    if kind == "content_filter":  # an answer withheld: kept as empty, billed once, not retried
        assert out[0].text == "" and out[0].finish_reason == "content_filter"
    else:
        assert out[0].text == "7"
    assert len(srv.requests) == (1 if kind in ANSWERS else 2)
    assert llm.attempts == len(srv.requests)
    assert llm.ledger.total.calls == 1, "one answer, one charge"
    assert srv.requests[-1]["outcome"] == "ok"


def test_injector_is_a_function_of_the_request_and_bounded():
    mix = FaultMix(rates={"500": 0.5, "reset": 0.5})  # every attempt fails until the bound
    a, b = FaultInjector(mix, seed=3, max_in_a_row=3), FaultInjector(mix, seed=3, max_in_a_row=3)
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": 1}
    first = [a(body) for _ in range(5)]
    assert [f and f[0] for f in first] == [f and f[0] for f in (b(body) for _ in range(5))]
    assert all(f is not None for f in first[:3]) and first[3] is None and first[4] is None
    assert sum(a.injected.values()) == 3
    with pytest.raises(ValueError, match="known kinds"):
        FaultInjector(FaultMix(rates={"gremlins": 0.1}))


def test_toy_model_answers_policy_and_learner_requests():
    assert toy_answer({"messages": [{"role": "user", "content": "What is 3 + 3?"}], "seed": 1}) == "6"
    assert toy_answer({"messages": [{"role": "user", "content": "What is 3 + 4?"}], "seed": 2}) == "7"
    assert toy_answer({"messages": [{"role": "user", "content": "What is 3 + 4?"}], "seed": 1}) == "8"
    schema = {"properties": {"lessons": {}}}
    body = {"messages": [{"role": "user", "content": "Problem: 4"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}  # fmt: skip
    assert json.loads(toy_answer(body))["lessons"][0].startswith("When ")


@pytest.mark.slow
def test_soak_thousands_of_faulty_requests_lose_nothing_and_charge_once(tmp_path):
    report = run_soak(tmp_path, steps_per_epoch=5)
    print("\n" + report.model_dump_json(indent=1))  # the figures, for the log (-s)
    assert report.problems() == []
    assert report.requests_sent >= 2000
    assert report.rollouts_lost == 0 and report.duplicate_charges == 0 and report.ledger_vs_served == 0
    failing = {k: n for k, n in report.faults.items() if k not in ANSWERS}
    assert set(report.faults) >= set(FAULT_KINDS) - {"content_filter", "timeout"}
    assert report.retries == sum(failing.values()), "every failure cost exactly one retry"
    assert report.requests_sent == report.served + sum(failing.values())
    assert report.lessons > 0 and report.rejected_ops > 0, "unknown ids were proposed and rejected"
