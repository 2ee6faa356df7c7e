"""The real OpenAI SDK client, wrapped, against a local server speaking the OpenAI API: requests carry memory."""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI, OpenAI
from test_policy import LESSONS, library

from memrl import MemoryPolicy
from memrl.inject import memory_block
from memrl.spec import DiversitySpec
from memrl.testing import Action, FakeOpenAIServer
from memrl.wrap import unwrap, wrap_openai

BLOCK = memory_block(LESSONS)
#: Library order: these tests check the wire, not which lessons are chosen (tests/test_tfgrpo_controls.py does)
PLAIN = DiversitySpec(injection="all")


@pytest.fixture
def server():
    with FakeOpenAIServer(default=Action(text="42")) as srv:
        yield srv


def client(server, policy, cls=OpenAI):
    return wrap_openai(cls(base_url=server.api_base, api_key="sk-test", max_retries=0), policy)


def test_chat_completions_carry_memory_in_the_system_message(server):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN))
    msgs = [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": "Add 2 and 3."}]
    reply = c.chat.completions.create(model="gpt-test", messages=msgs, temperature=0)
    assert reply.choices[0].message.content == "42"
    body = server.requests[-1]["body"]
    assert body["messages"] == [{"role": "system", "content": f"You are an agent.\n\n{BLOCK}"}, msgs[1]]
    assert body["temperature"] == 0 and body["model"] == "gpt-test"
    assert msgs[0]["content"] == "You are an agent.", "the app's own list is untouched"


def test_user_placement_and_an_explicit_query(server):
    policy = MemoryPolicy(library(), diversity=PLAIN, placement="user", token_budget=40)
    c = client(server, policy)
    c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hello"}], memrl_query="units")
    body = server.requests[-1]["body"]
    assert "memrl_query" not in body
    text = body["messages"][0]["content"]
    assert text.endswith("\n\nhello") and LESSONS[1] in text and LESSONS[0] not in text


def test_every_route_to_chat_completions_is_augmented(server):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN))
    msgs = [{"role": "user", "content": "2 + 2?"}]
    raw = c.chat.completions.with_raw_response.create(model="m", messages=msgs)
    assert raw.parse().choices[0].message.content == "42"
    c.with_options(timeout=5).chat.completions.create(model="m", messages=msgs)
    c.copy().with_raw_response.chat.completions.create(model="m", messages=msgs)
    assert [r["body"]["messages"][0]["content"] for r in server.requests] == [BLOCK] * 3
    assert c.models.list().data[0].id == "fake", "everything else is the client itself"
    assert isinstance(unwrap(c), OpenAI) and unwrap(c).base_url == c.base_url


def test_responses_api_gets_memory_in_instructions_or_input(server):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN))
    c.responses.create(model="m", input="Add 2 and 3.", instructions="Be brief.")
    assert server.requests[-1]["path"].endswith("/responses")
    assert server.requests[-1]["body"]["instructions"] == f"Be brief.\n\n{BLOCK}"
    c = client(server, MemoryPolicy(library(), diversity=PLAIN, placement="user"))
    c.responses.create(model="m", input="Add 2 and 3.")
    assert server.requests[-1]["body"]["input"] == f"{BLOCK}\n\nAdd 2 and 3."


async def test_async_client_carries_memory_from_50_concurrent_tasks(server):
    policy = MemoryPolicy(library(), diversity=PLAIN)
    c = client(server, policy, AsyncOpenAI)

    async def ask(i: int) -> str:
        r = await c.chat.completions.create(model="m", messages=[{"role": "user", "content": f"task {i}"}])
        await policy.arecord(f"task {i}", r.choices[0].message.content, 1.0)
        return r.choices[0].message.content

    assert await asyncio.gather(*(ask(i) for i in range(50))) == ["42"] * 50
    bodies = [r["body"]["messages"] for r in server.requests]
    assert len(bodies) == 50 and all(b[0] == {"role": "system", "content": BLOCK} for b in bodies)
    assert sorted(b[1]["content"] for b in bodies) == sorted(f"task {i}" for i in range(50))
    assert len(policy.outcomes) == 50
