"""litellm's completion calls, wrapped, against a local OpenAI-protocol server: requests carry memory."""

from __future__ import annotations

import asyncio

import pytest
from test_policy import LESSONS, library

from memrl import MemoryPolicy
from memrl.inject import memory_block
from memrl.spec import DiversitySpec
from memrl.testing import Action, FakeOpenAIServer
from memrl.wrap import wrap_litellm

BLOCK = memory_block(LESSONS)
#: Library order: these tests check the wire, not which lessons are chosen (tests/test_tfgrpo_controls.py does)
PLAIN = DiversitySpec(injection="all")


@pytest.fixture
def server():
    with FakeOpenAIServer(default=Action(text="42")) as srv:
        yield srv


def test_litellm_completion_carries_memory(server, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    llm = wrap_litellm(MemoryPolicy(library(), diversity=PLAIN))
    msgs = [{"role": "user", "content": "2 + 2?"}]
    r = llm.completion("openai/gpt-test", msgs, api_base=server.api_base, api_key="sk-test", num_retries=0)
    assert r.choices[0].message.content == "42"
    assert server.requests[-1]["body"]["messages"] == [{"role": "system", "content": BLOCK}, *msgs]
    r = asyncio.run(
        llm.acompletion(model="openai/gpt-test", messages=msgs, api_base=server.api_base, api_key="sk-test")
    )
    assert server.requests[-1]["body"]["messages"][0]["content"] == BLOCK
    assert llm.get_llm_provider("openai/gpt-test")[1] == "openai", "other attributes are litellm's"
