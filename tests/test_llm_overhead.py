"""The cheap per-call paths of the model layer keep its guarantees: a SIGKILL loses no finished call's
ledger record or cached answer, cache keys are the same bytes as before, a retrier serves concurrent
calls, templates compile once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap

import pytest

from memrl.errors import ConfigError, ServerError
from memrl.llm.base import Request
from memrl.llm.cache import ResponseCache, cache_key, cache_keys
from memrl.llm.ledger import CallRecord, Ledger
from memrl.llm.managed import ManagedLLM, RetryPolicy
from memrl.prompts import _compiled, render
from memrl.testing.function_client import FunctionClient
from memrl.types import Completion, Message, Usage

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from memrl.llm.base import Request
    from memrl.llm.cache import ResponseCache
    from memrl.llm.ledger import Ledger
    from memrl.llm.managed import ManagedLLM
    from memrl.testing.function_client import FunctionClient
    from memrl.types import Message

    d = Path(sys.argv[1])
    llm = ManagedLLM(
        FunctionClient(lambda r, seed: f"answer {seed}"),
        cache=ResponseCache(d / "cache.sqlite"),
        ledger=Ledger(calls_path=d / "calls.jsonl"),
        max_concurrency=4,
    )

    async def main():
        i = 0
        while True:
            qs = [f"q{i + j}" for j in range(4)]
            await asyncio.gather(*(llm.complete(Request.of([Message.user(q)]), n=2, phase=q) for q in qs))
            print(*qs, sep="\\n", flush=True)  # only after complete() returned: these calls are finished
            i += 4

    asyncio.run(main())
    """
)


def request(q: str) -> Request:
    return Request.of([Message.user(q)])


@pytest.mark.parametrize("after", [1, 97, 400])
def test_sigkill_loses_no_finished_call_record_or_answer(tmp_path, after):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        done = []
        for line in proc.stdout:
            done.append(line.strip())
            if len(done) >= after:
                break
        proc.send_signal(signal.SIGKILL)  # the child is still calling: kills land mid-call, not at an exit
        done += [q.strip() for q in proc.stdout]
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    lines = (tmp_path / "calls.jsonl").read_bytes().split(b"\n")
    assert lines.pop() == b"", "every record is a whole line"
    recs = [CallRecord.model_validate_json(x) for x in lines]
    per_q: dict[str, int] = {}
    for r in recs:
        per_q[r.phase] = per_q.get(r.phase, 0) + 1
    missing = [q for q in done if per_q.get(q) != 2]
    assert not missing, f"finished calls without their two ledger records: {missing[:5]}"

    client = FunctionClient(lambda r, seed: "NEW")
    ledger = Ledger(calls_path=tmp_path / "calls.jsonl")
    assert ledger.total.calls == len(recs), "a resumed ledger counts every journalled call"
    resumed = ManagedLLM(
        client, name="function", cache=ResponseCache(tmp_path / "cache.sqlite"), ledger=ledger
    )

    async def replay() -> list[list[Completion]]:
        return await asyncio.gather(*(resumed.complete(request(q), n=2, phase=q) for q in done))

    out = asyncio.run(replay())
    assert client.calls == 0, "a resumed run pays nothing twice"
    assert all(c.cached and c.text.startswith("answer ") for cs in out for c in cs)
    assert ledger.total.calls == len(recs) and ledger.total.cached_calls == 2 * len(done)
    ledger.close()


def test_cache_keys_are_the_bytes_of_the_canonical_payload():
    req = Request.of(
        [Message.system("Be brief."), Message.user('What is "2+2"? ü')],
        temperature=0.3,
        stop=["\n"],
        json_schema={"type": "object", "properties": {"b": {}, "a": {}}},
    )
    keys = cache_keys("openai/gpt-4o-mini", req, 3, salt="epoch-2")
    assert keys == [cache_key("openai/gpt-4o-mini", req, i, "epoch-2") for i in range(3)]
    assert len(set(keys)) == 3
    # pinned (computed with the per-sample json.dumps of memrl before cache_keys): a change here would
    # make every existing cache miss
    assert cache_keys("m", request("hi"), 2, "s")[1] == (
        "6afd20839469890c82db687cf0a8e020b88c2f7114c63c93ffacd236c8fbd182"
    )


def test_get_many_returns_only_the_cached_keys(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("a", "m", Completion(text="A"))
    cache.put("c", "m", Completion(text="C"))
    keys = ["a", "b", "c"] + [f"x{i}" for i in range(1200)]  # more than one query's worth of parameters
    assert {k: v.text for k, v in cache.get_many(keys).items()} == {"a": "A", "c": "C"}
    assert cache.get_many([]) == {}
    cache.close()


def test_running_totals_match_the_phases(tmp_path):
    start = {"old": Usage(prompt_tokens=5, completion_tokens=1, calls=1)}
    ledger = Ledger(max_tokens=1000, start=start)
    for i in range(30):
        rec = CallRecord(
            model="m", phase=f"p{i % 3}", prompt_tokens=i, completion_tokens=1, cost_usd=0.01, latency_s=0.0,
            cached=i % 5 == 0,
        )  # fmt: skip
        ledger.record(rec)
    resummed = sum(ledger.by_phase.values(), Usage())
    assert ledger.total.model_dump(exclude={"cost_usd"}) == resummed.model_dump(exclude={"cost_usd"})
    assert ledger.total.cost_usd == pytest.approx(resummed.cost_usd)  # summed in another order
    assert ledger.snapshot()["total"]["calls"] == 1 + 24
    path = tmp_path / "sub" / "calls.jsonl"
    journalled = Ledger(calls_path=path)
    journalled.record(
        CallRecord(model="m", phase="p", prompt_tokens=3, completion_tokens=2, cost_usd=0, latency_s=0)
    )
    journalled.close()
    journalled.record(
        CallRecord(model="m", phase="q", prompt_tokens=1, completion_tokens=1, cost_usd=0, latency_s=0)
    )
    assert Ledger(calls_path=path).total == journalled.total
    assert [json.loads(x)["phase"] for x in path.read_text().splitlines()] == ["p", "q"]


async def test_one_policy_serves_concurrent_calls_each_with_its_own_attempts():
    policy = RetryPolicy(max_attempts=3, max_wait_s=1.0, initial_s=0.01)
    tries: dict[str, int] = {}

    def flaky(name: str, fails: int):
        async def attempt() -> str:
            tries[name] = tries.get(name, 0) + 1
            await asyncio.sleep(0.01)
            if tries[name] <= fails:
                raise ServerError("boom", status=500)
            return name

        return attempt

    out = await asyncio.gather(
        policy.call(flaky("a", 2)), policy.call(flaky("b", 1)), policy.call(flaky("c", 0))
    )
    assert out == ["a", "b", "c"] and tries == {"a": 3, "b": 2, "c": 1}
    with pytest.raises(ServerError):
        await policy.call(flaky("d", 5))
    assert tries["d"] == 3, "bounded attempts, the bare first try included"
    with pytest.raises(ServerError):
        await RetryPolicy(max_attempts=1).call(flaky("e", 5))
    assert tries["e"] == 1


def test_templates_compile_once_and_errors_stay_errors():
    src = "Q: {{ question }} #compile-once-test"
    render(src, question="a")
    misses = _compiled.cache_info().misses
    assert [render(src, question=q) for q in "bc"] == ["Q: b #compile-once-test", "Q: c #compile-once-test"]
    assert _compiled.cache_info().misses == misses
    for _ in range(2):
        with pytest.raises(ConfigError, match="syntax error"):
            render("{% if %}")
        with pytest.raises(ConfigError, match="undefined variable"):
            render(src)
