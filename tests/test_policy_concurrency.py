"""MemoryPolicy under concurrent use: asyncio tasks and threads, with learning interleaved. Nothing is lost."""

from __future__ import annotations

import asyncio
import json
import threading

from openai import AsyncOpenAI
from test_policy import library, scripted_learner

from memrl import MemoryPolicy
from memrl.testing import Action, FakeOpenAIServer
from memrl.wrap import wrap_openai


async def test_50_asyncio_tasks_through_a_wrapped_client_lose_no_recorded_outcome(tmp_path):
    log = tmp_path / "outcomes.jsonl"
    policy = MemoryPolicy(library(), learner=scripted_learner(), outcomes_path=log)
    results = []
    with FakeOpenAIServer(default=Action(text="42", delay_s=0.005)) as server:
        client = wrap_openai(AsyncOpenAI(base_url=server.api_base, api_key="k", max_retries=0), policy)

        async def agent(i: int) -> None:
            task = f"Task {i % 10}: add the numbers and report the sum"  # 10 tasks, 5 attempts each
            msgs = [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": task}]
            reply = await client.chat.completions.create(model="m", messages=msgs)
            trajectory = [*msgs, {"role": "assistant", "content": reply.choices[0].message.content}]
            await policy.arecord(task, trajectory, reward=float(i // 10 % 2), feedback=f"attempt {i}")
            if i % 10 == 9:  # learning runs while other tasks are still recording
                results.append(await policy.alearn())

        await asyncio.gather(*(agent(i) for i in range(50)))
        results.append(await policy.alearn())
    assert len(server.requests) == 50
    assert all("Lessons learned" in r["body"]["messages"][0]["content"] for r in server.requests)
    assert policy.recorded == 50
    assert sum(r.outcomes for r in results) == 50, "every outcome reached exactly one learn()"
    assert sum(r.compared for r in results) + len(policy.outcomes) == 50, "compared, or still waiting"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(x["feedback"] for x in lines) == sorted(f"attempt {i}" for i in range(50))
    assert all(len(x["lessons"]) == 3 for x in lines), "each outcome knows the lessons its prompt showed"
    assert sum(r.learned_groups for r in results) >= 1 and len(policy.library) > 3


def test_threads_recording_while_others_learn_lose_nothing():
    policy = MemoryPolicy(library(), learner=scripted_learner())
    results, errors = [], []
    start = threading.Barrier(10)

    def recorder(t: int) -> None:
        start.wait()
        for i in range(25):
            q = f"Topic{t}: question {i % 5}"
            policy.augment([{"role": "user", "content": q}])
            policy.record(q, f"answer {i}", float(i % 2))

    def learner() -> None:
        start.wait()
        for _ in range(5):
            try:
                results.append(policy.learn())
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

    threads = [threading.Thread(target=recorder, args=(t,)) for t in range(8)]
    threads += [threading.Thread(target=learner) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    results.append(policy.learn())
    assert not errors and policy.recorded == 200
    assert sum(r.outcomes for r in results) == 200
    assert sum(r.compared for r in results) + len(policy.outcomes) == 200
