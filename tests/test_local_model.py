"""The litellm adapter against the real embedded llama.cpp server: generation, n samples, logprobs, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import needs_local

from memrl.llm.base import Request
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.local import ALIAS, LocalServer, resolve_gguf
from memrl.llm.managed import ManagedLLM
from memrl.types import Message

pytestmark = needs_local


def _llm(server) -> ManagedLLM:
    return ManagedLLM(LiteLLMClient(f"openai/{ALIAS}", api_base=server.api_base, local=True), name="local")


async def test_generation_n_samples_and_logprobs(local_server):
    req = Request.of(
        [Message.user("Name a colour.")], temperature=1.0, max_tokens=12, logprobs=True, top_logprobs=3
    )
    out = await _llm(local_server).complete(req, n=4)
    assert len(out) == 4
    assert all(c.text.strip() for c in out)
    assert len({c.text for c in out}) > 1, "four samples at temperature 1 should not all be identical"
    for c in out:
        assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
        assert c.logprobs and all(t.logprob <= 0 for t in c.logprobs)
        assert all(1 <= len(t.top) <= 4 for t in c.logprobs)


async def test_schema_constrained_json(local_server):
    schema = {
        "type": "object",
        "properties": {"operations": {"type": "array", "maxItems": 2, "items": {
            "anyOf": [
                {"type": "object", "properties": {"op": {"const": "ADD"}, "content": {"type": "string"}},
                 "required": ["op", "content"]},
                {"type": "object", "properties": {"op": {"const": "DELETE"}, "id": {"type": "string"}},
                 "required": ["op", "id"]},
            ]}}},
        "required": ["operations"],
    }  # fmt: skip
    req = Request.of(
        [Message.user("Propose edits to a list of maths tips.")],
        temperature=0.3,
        max_tokens=120,
        json_schema=schema,
    )
    out = await _llm(local_server).complete(req)
    data = json.loads(out[0].text)
    assert isinstance(data["operations"], list) and len(data["operations"]) <= 2


def test_server_stops_and_cold_start_is_measured():
    srv = LocalServer(resolve_gguf("local")).start()
    pid = srv.proc.pid
    print(f"\ncold start of the embedded server: {srv.startup_s:.2f}s")
    assert srv.startup_s is not None and srv.startup_s < 120
    srv.stop()
    time.sleep(0.2)
    assert subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0


def test_server_dies_with_a_killed_parent(tmp_path):
    code = (
        "from memrl.llm.local import LocalServer, resolve_gguf\n"
        "s = LocalServer(resolve_gguf('local')).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(50):
        if subprocess.run(["kill", "-0", str(child_pid)], capture_output=True).returncode != 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the llama.cpp server outlived its killed parent")


async def test_memrl_asks_the_embedded_server_for_no_repetition_penalty(local_server):
    """llama-cpp-python's server penalises repeated tokens (1.1) unless told otherwise, which breaks code;
    memrl sends `SAMPLER` (no penalty, as hosted APIs) and keys its cache on it."""
    from memrl.llm.factory import build_llm
    from memrl.llm.local import SAMPLER
    from memrl.spec import ModelSpec

    llm = build_llm(ModelSpec(name="local"))
    assert SAMPLER == {"repeat_penalty": 1.0}
    assert llm.cache_name != llm.name and "repeat_penalty=1.0" in llm.cache_name
    prompt = [Message.user("Write the digits 1 2 3 4 twelve times, separated by spaces, nothing else.")]
    req = Request.of(prompt, temperature=0.0, max_tokens=60)

    def raw(penalty: float) -> ManagedLLM:
        client = LiteLLMClient(
            f"openai/{ALIAS}", api_base=local_server.api_base, local=True,
            extra={"extra_body": {"repeat_penalty": penalty}},
        )  # fmt: skip
        return ManagedLLM(client, name=f"rp{penalty}")

    await raw(1.0).complete(req)  # warm: the server's first answer after loading may differ in the last bits
    ours = (await llm.complete(req))[0].text
    assert ours == (await raw(1.0).complete(req))[0].text
    assert ours != (await raw(1.1).complete(req))[0].text, "the penalty should change this greedy answer"
