"""The real Anthropic SDK client, wrapped, against a local server speaking the Messages API."""

from __future__ import annotations

import asyncio

import pytest
from anthropic import Anthropic, AsyncAnthropic
from test_policy import LESSONS, library

from memrl import MemoryPolicy
from memrl.inject import memory_block
from memrl.spec import DiversitySpec
from memrl.testing import Action, FakeAnthropicServer
from memrl.wrap import wrap_anthropic

BLOCK = memory_block(LESSONS)
#: Library order: these tests check the wire, not which lessons are chosen (tests/test_tfgrpo_controls.py does)
PLAIN = DiversitySpec(injection="all")


def calculator_model(body: dict) -> str | list[dict]:
    """Calls the calculator once, then answers with what it returned."""
    last = body["messages"][-1]["content"]
    if isinstance(last, list) and last and last[0].get("type") == "tool_result":
        return f"The sum is {last[0]['content']}."
    return [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool_use", "name": "calc", "input": {"expr": "2+3"}},
    ]


@pytest.fixture
def server():
    with FakeAnthropicServer(reply=calculator_model) as srv:
        yield srv


def client(server, policy, cls=Anthropic):
    return wrap_anthropic(cls(base_url=server.base_url, api_key="sk-ant-test", max_retries=0), policy)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, BLOCK),
        ("You are an agent.", f"You are an agent.\n\n{BLOCK}"),
        ([{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}}],
         [{"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}},
          {"type": "text", "text": BLOCK}]),
    ],
)  # fmt: skip
def test_messages_create_carries_memory_in_system(server, system, expected):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN))
    kw = {"system": system} if system is not None else {}
    # anthropic 2.x has no temperature argument on messages.create: it travels in extra_body
    msg = c.messages.create(
        model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "Add 2 and 3."}],
        extra_body={"temperature": 0}, **kw,
    )  # fmt: skip
    assert msg.stop_reason == "tool_use" and msg.content[1].input == {"expr": "2+3"}
    body = server.messages()[-1]
    assert body["system"] == expected and body["temperature"] == 0
    assert body["messages"] == [{"role": "user", "content": "Add 2 and 3."}]


def test_a_tool_loop_keeps_the_task_as_the_query_and_user_placement_puts_memory_there(server):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN, placement="user"))
    msgs: list[dict] = [{"role": "user", "content": "Add 2 and 3 with the calculator."}]
    tools = [{"name": "calc", "description": "evaluate", "input_schema": {"type": "object"}}]
    for _ in range(3):
        msg = c.messages.create(model="claude-test", max_tokens=64, messages=msgs, tools=tools)
        msgs.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]})
        if msg.stop_reason != "tool_use":
            break
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": msg.content[1].id,
                                                  "content": "5"}]})  # fmt: skip
    assert msgs[-1]["content"][0]["text"] == "The sum is 5."
    sent = server.messages()
    assert len(sent) == 2
    for body in sent:  # both turns: memory before the task, tool results untouched, no system added
        assert body["messages"][0]["content"] == f"{BLOCK}\n\nAdd 2 and 3 with the calculator."
        assert "system" not in body
    assert sent[1]["messages"][2]["content"][0]["type"] == "tool_result"
    assert msgs[0]["content"] == "Add 2 and 3 with the calculator.", "the app's own list is untouched"


def test_stream_count_tokens_and_raw_responses_are_augmented(server):
    c = client(server, MemoryPolicy(library(), diversity=PLAIN))
    msgs = [{"role": "user", "content": "Add 2 and 3."}]
    with c.messages.stream(model="claude-test", max_tokens=64, messages=msgs, system="S") as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Let me compute." and final.content[1].name == "calc"
    plain = Anthropic(base_url=server.base_url, api_key="k", max_retries=0)
    bare = plain.messages.count_tokens(model="claude-test", messages=msgs).input_tokens
    assert c.messages.count_tokens(model="claude-test", messages=msgs).input_tokens > bare + 30
    c.messages.with_raw_response.create(model="claude-test", max_tokens=8, messages=msgs)
    c.with_options(timeout=5).messages.create(model="claude-test", max_tokens=8, messages=msgs)
    systems = [r["body"].get("system") for r in server.requests]
    assert systems == [f"S\n\n{BLOCK}", None, BLOCK, BLOCK, BLOCK]


def test_errors_pass_through_unchanged():
    import anthropic

    with FakeAnthropicServer(script=[Action(status=429, headers={"retry-after": "0"})]) as srv:
        c = client(srv, MemoryPolicy(library(), diversity=PLAIN))
        with pytest.raises(anthropic.RateLimitError):
            c.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        assert srv.messages()[0]["system"] == BLOCK


async def test_async_client_from_50_concurrent_tasks(server):
    policy = MemoryPolicy(library(), diversity=PLAIN)
    c = client(server, policy, AsyncAnthropic)

    async def ask(i: int) -> None:
        msg = await c.messages.create(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": f"task {i}"}]
        )
        turn = {"role": "assistant", "content": [b.model_dump() for b in msg.content]}
        await policy.arecord(f"task {i}", [turn], 0.0)

    await asyncio.gather(*(ask(i) for i in range(50)))
    sent = server.messages()
    assert len(sent) == 50 and all(b["system"] == BLOCK for b in sent)
    assert sorted(b["messages"][0]["content"] for b in sent) == sorted(f"task {i}" for i in range(50))
    assert len(policy.outcomes) == 50
    assert policy.outcomes[0].trajectory == ['assistant: Let me compute.\ncall calc({"expr": "2+3"})']
