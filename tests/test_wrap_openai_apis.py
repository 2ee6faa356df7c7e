"""The wrapped OpenAI SDK client in the three shapes apps use beyond one chat call — the Responses API,
streaming and a tool loop — against a local HTTP server speaking the OpenAI protocol: the request on the
wire carries the memory exactly where the policy places it, and nothing else changes."""

from __future__ import annotations

import copy
import json

import pytest
from openai import AsyncOpenAI, OpenAI
from test_policy import LESSONS, library

from memrl import MemoryPolicy
from memrl.inject import memory_block
from memrl.spec import DiversitySpec
from memrl.testing import Action, FakeOpenAIServer
from memrl.wrap import wrap_openai

BLOCK = memory_block(LESSONS)
PLAIN = DiversitySpec(injection="all")  # library order: the wire is checked here, not lesson choice
TASK = "Add 12 and 30, then multiply by 2."
ANSWER = "The answer is 84, after two tool calls."
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calc",
            "parameters": {
                "type": "object",
                "properties": {"expr": {"type": "string"}},
                "required": ["expr"],
            },
        },
    }
]


def policy(placement: str = "system") -> MemoryPolicy:
    return MemoryPolicy(library(), diversity=PLAIN, placement=placement)


def clients(server, placement: str = "system", cls=OpenAI):
    """The app's client wrapped, and the same client unwrapped (to compare what the app sees)."""
    raw = cls(base_url=server.api_base, api_key="sk-test", max_retries=0)
    return wrap_openai(raw, policy(placement)), raw


def tool_model(body: dict) -> str | list[dict]:
    """Asks for `calc` until two tool results are in the request, then answers."""
    items = body.get("messages") or body.get("input") or []
    results = [m for m in items if isinstance(m, dict) and m.get("role") == "tool"]
    results += [m for m in items if isinstance(m, dict) and m.get("type") == "function_call_output"]
    if len(results) >= 2:
        return ANSWER
    expr = "12 + 30" if not results else "42 * 2"
    return [{"id": f"call_{len(results)}", "name": "calc", "arguments": json.dumps({"expr": expr})}]


def blocks(obj) -> int:
    """How many times the memory block is in a request body (any string anywhere in it)."""
    if isinstance(obj, str):
        return obj.count(BLOCK)
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else []
    return sum(blocks(x) for x in items)


@pytest.fixture
def server():
    with FakeOpenAIServer(default=Action(text=ANSWER)) as srv:
        yield srv


@pytest.fixture
def tool_server():
    with FakeOpenAIServer(responder=tool_model) as srv:
        yield srv


# --- the Responses API ---------------------------------------------------------------------------------


def test_responses_memory_joins_instructions_and_the_reply_reads_as_usual(server):
    c, _ = clients(server)
    reply = c.responses.create(model="m", instructions="Be brief.", input=TASK)
    assert reply.output_text == ANSWER
    body = server.requests[-1]["body"]
    assert server.requests[-1]["path"] == "/v1/responses"
    assert body["instructions"] == f"Be brief.\n\n{BLOCK}" and body["input"] == TASK
    c.responses.create(model="m", input=TASK)  # no instructions of the app's own
    assert server.requests[-1]["body"]["instructions"] == BLOCK


def test_responses_user_placement_goes_before_the_task_in_input_items(server):
    c, _ = clients(server, "user")
    items = [{"role": "user", "content": [{"type": "input_text", "text": TASK}]}]
    c.responses.create(model="m", instructions="Be brief.", input=items)
    body = server.requests[-1]["body"]
    assert body["instructions"] == "Be brief.", "user placement leaves the instructions alone"
    assert body["input"] == [
        {
            "role": "user",
            "content": [{"type": "input_text", "text": BLOCK}, {"type": "input_text", "text": TASK}],
        }
    ]
    assert items[0]["content"] == [{"type": "input_text", "text": TASK}], "the app's own items are untouched"


def test_responses_streamed_events_are_the_servers_and_the_request_carries_memory(server):
    c, raw = clients(server)
    with c.responses.create(model="m", instructions="Be brief.", input=TASK, stream=True) as events:
        got = [(e.type, getattr(e, "delta", None)) for e in events]
    with raw.responses.create(model="m", instructions="Be brief.", input=TASK, stream=True) as events:
        assert got == [(e.type, getattr(e, "delta", None)) for e in events]
    assert "".join(d for t, d in got if t == "response.output_text.delta") == ANSWER
    assert server.requests[0]["body"]["instructions"] == f"Be brief.\n\n{BLOCK}"
    assert server.requests[1]["body"]["instructions"] == "Be brief."
    with c.responses.stream(model="m", input=TASK) as stream:  # the SDK's streaming helper
        assert stream.get_final_response().output_text == ANSWER
    assert server.requests[-1]["body"]["instructions"] == BLOCK and server.requests[-1]["body"]["stream"]


# --- streaming chat ------------------------------------------------------------------------------------


def chunks(stream) -> list[tuple]:
    return [
        (ch.choices[0].delta.content, ch.choices[0].finish_reason) if ch.choices else (None, ch.usage)
        for ch in stream
    ]


@pytest.mark.parametrize("placement", ["system", "user"])
def test_streamed_chat_yields_the_models_chunks_unchanged(server, placement):
    c, raw = clients(server, placement)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TASK}]
    opts = {"model": "m", "messages": msgs, "stream": True, "stream_options": {"include_usage": True}}
    wrapped = chunks(c.chat.completions.create(**opts))
    assert wrapped == chunks(raw.chat.completions.create(**opts))
    assert wrapped[-1][1].total_tokens == 15
    assert "".join(text or "" for text, *_ in wrapped) == ANSWER and len(wrapped) > 3
    sent = server.requests[0]["body"]
    if placement == "system":
        assert sent["messages"] == [{"role": "system", "content": f"Be brief.\n\n{BLOCK}"}, msgs[1]]
    else:
        assert sent["messages"] == [msgs[0], {"role": "user", "content": f"{BLOCK}\n\n{TASK}"}]
    assert sent["stream"] is True and server.requests[1]["body"]["messages"] == msgs


def test_the_chat_stream_helper_and_the_async_stream_carry_memory(server):
    import asyncio

    c, _ = clients(server)
    msgs = [{"role": "user", "content": TASK}]
    with c.chat.completions.stream(model="m", messages=msgs) as stream:
        assert stream.get_final_completion().choices[0].message.content == ANSWER

    async def streamed() -> str:
        ac, _ = clients(server, cls=AsyncOpenAI)
        out = await ac.chat.completions.create(model="m", messages=msgs, stream=True)
        return "".join([ch.choices[0].delta.content or "" async for ch in out if ch.choices])

    assert asyncio.run(streamed()) == ANSWER
    assert [r["body"]["messages"][0] for r in server.requests] == [{"role": "system", "content": BLOCK}] * 2


# --- a tool loop ---------------------------------------------------------------------------------------


def chat_tool_loop(client, messages: list[dict], stream: bool = False) -> list[dict]:
    """The app's loop: ask, run each tool call the model asks for, send the results, until an answer."""
    for _ in range(5):
        kwargs = {"model": "m", "messages": messages, "tools": TOOLS}
        if stream:
            with client.chat.completions.stream(**kwargs) as s:
                msg = s.get_final_completion().choices[0].message
        else:
            msg = client.chat.completions.create(**kwargs).choices[0].message
        messages = [*messages, msg.model_dump(exclude_none=True, exclude={"parsed"})]
        if not msg.tool_calls:
            return messages
        for call in msg.tool_calls:
            expr = json.loads(call.function.arguments)["expr"]
            messages.append({"role": "tool", "tool_call_id": call.id, "content": str(eval(expr))})
    raise AssertionError("no answer")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("placement", ["system", "user"])
def test_every_request_of_a_tool_loop_carries_the_same_memory_once(tool_server, placement, stream):
    c, _ = clients(tool_server, placement)
    start = [{"role": "system", "content": "Use calc."}, {"role": "user", "content": TASK}]
    messages = chat_tool_loop(c, copy.deepcopy(start), stream)
    assert messages[-1]["content"] == ANSWER and len(tool_server.requests) == 3
    for n, req in enumerate(tool_server.requests):
        sent = req["body"]["messages"]
        assert len(sent) == 2 + 2 * n and req["body"]["tools"] == TOOLS
        if placement == "system":
            assert sent[:2] == [{"role": "system", "content": f"Use calc.\n\n{BLOCK}"}, start[1]]
        else:
            assert sent[:2] == [start[0], {"role": "user", "content": f"{BLOCK}\n\n{TASK}"}]
        assert sent[2:] == messages[2 : 2 + 2 * n], (
            "assistant tool calls and tool results go as the app sent them"
        )
        assert blocks(sent) == 1
    assert messages[:2] == start and [m["content"] for m in messages if m["role"] == "tool"] == ["42", "84"]


def test_the_tool_loop_is_recorded_with_the_whole_message_list(tool_server):
    c, _ = clients(tool_server)
    messages = chat_tool_loop(c, [{"role": "user", "content": TASK}])
    c.policy.record(TASK, messages, 1.0)
    (outcome,) = c.policy.outcomes
    assert outcome.query == TASK and outcome.trajectory == [
        f"user: {TASK}",
        'assistant: call calc({"expr": "12 + 30"})',
        "tool: 42",
        'assistant: call calc({"expr": "42 * 2"})',
        "tool: 84",
        f"assistant: {ANSWER}",
    ], "the app's messages, without the memory"
    assert outcome.lessons == ["L0001", "L0002", "L0003"], "credited to the lessons its requests carried"


@pytest.mark.parametrize("placement", ["system", "user"])
def test_a_responses_api_tool_loop_keeps_the_memory_on_every_request(tool_server, placement):
    c, _ = clients(tool_server, placement)
    items: list = [{"role": "user", "content": TASK}]
    for _ in range(5):
        reply = c.responses.create(model="m", instructions="Use calc.", input=items, tools=[])
        calls = [o for o in reply.output if o.type == "function_call"]
        if not calls:
            break
        for call in calls:
            items += [call.model_dump(exclude_none=True)]
            out = str(eval(json.loads(call.arguments)["expr"]))
            items += [{"type": "function_call_output", "call_id": call.call_id, "output": out}]
    assert reply.output_text == ANSWER and len(tool_server.requests) == 3
    for req in tool_server.requests:
        body = req["body"]
        if placement == "system":
            assert body["instructions"] == f"Use calc.\n\n{BLOCK}" and body["input"][0]["content"] == TASK
        else:
            assert body["instructions"] == "Use calc." and body["input"][0]["content"] == f"{BLOCK}\n\n{TASK}"
        assert body["input"][1:] == items[1 : len(body["input"])] and blocks(body) == 1


def test_a_chained_responses_tool_turn_without_user_text_is_sent_not_refused(server):
    """`previous_response_id` + only `function_call_output` items: with `user` placement the memory went
    in with the task on the first turn; the wrapper used to raise ValueError before sending anything."""
    c, _ = clients(server, "user")
    outputs = [{"type": "function_call_output", "call_id": "call_0", "output": "42"}]
    c.responses.create(model="m", previous_response_id="resp_1", input=outputs)
    assert (
        server.requests[-1]["body"]["input"] == outputs and "instructions" not in server.requests[-1]["body"]
    )
