"""Unpriced OpenAI-compatible servers are called over plain HTTP, without litellm (`memrl.llm.openai_direct`).

The retry, status and reset tests of test_llm_retries.py run on this route too (their client is `openai/fake`
on a local address); these check which route a model takes, what reaches the server, and that a run on such
a server never imports litellm.
"""

from __future__ import annotations

import json
import subprocess
import sys

from memrl.llm.base import Request
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.openai_direct import direct_route, priced
from memrl.testing import Action, FakeOpenAIServer
from memrl.types import Message

REQ = Request.of([Message.user("What is 2+2?")], temperature=0.5, max_tokens=8, logprobs=True, top_logprobs=2)


def test_the_route_follows_the_price_map():
    assert priced("openai/gpt-4o-mini") and priced("gpt-4o-mini") and not priced("openai/my-vllm-model")
    assert direct_route("openai/local", api_base="http://127.0.0.1:1/v1", local=True)
    assert direct_route("openai/my-vllm-model", api_base="http://10.0.0.2:8000/v1", local=False)
    # litellm prices these (or reaches a provider the SDK does not): they keep going through litellm
    assert not direct_route("openai/gpt-4o-mini", api_base="http://127.0.0.1:1/v1", local=False)
    assert not direct_route("openai/my-model", api_base=None, local=False)
    assert not direct_route("anthropic/claude-3-5-haiku-latest", api_base="http://127.0.0.1:1", local=False)
    assert not direct_route("hosted_vllm/my-model", api_base="http://127.0.0.1:1", local=False)


async def test_the_server_gets_what_litellm_would_send(monkeypatch):
    monkeypatch.setenv("DIRECT_KEY", "sk-direct-test")
    with FakeOpenAIServer(default=Action(text="4")) as srv:
        client = LiteLLMClient(
            "openai/my-model", api_base=srv.api_base, api_key_env="DIRECT_KEY",
            extra={"top_p": 0.9, "top_k": 20, "extra_body": {"min_p": 0.05}},
        )  # fmt: skip
        assert client._direct is not None and client._litellm is None
        out = await client.complete_once(REQ, seed=7)
    body = srv.requests[0]["body"]
    assert body["model"] == "my-model" and body["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"]) == (0.5, 8, 7, 0.9)
    assert (body["top_k"], body["min_p"]) == (20, 0.05), "settings the SDK does not name go in the body"
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    headers = {k.lower(): v for k, v in srv.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer sk-direct-test"
    assert [c.text for c in out] == ["4"] and out[0].usage.calls == 1 and out[0].usage.cost_usd == 0.0


def test_a_run_on_an_unpriced_server_never_imports_litellm_or_the_sdk(tmp_path):
    with FakeOpenAIServer(default=Action(text="4")) as srv:
        code = (
            "import asyncio, sys\n"
            "from memrl.llm.factory import build_llm\n"
            "from memrl.llm.base import Request\n"
            "from memrl.spec import ModelSpec\n"
            "from memrl.types import Message\n"
            f"llm = build_llm(ModelSpec(name='openai/my-model', api_base={srv.api_base!r}))\n"
            "out = asyncio.run(llm.complete(Request.of([Message.user('q')], temperature=0.0, max_tokens=4)))\n"
            "print(out[0].text, 'litellm' in sys.modules, 'openai' in sys.modules)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["4", "False", "False"], "neither litellm nor the openai SDK is imported"
    assert json.loads(json.dumps(srv.requests[0]["body"]))["model"] == "my-model"
