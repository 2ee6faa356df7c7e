"""llama.cpp's own server (`llama-server`) as the embedded local model: it starts, decodes four requests at
once, answers with logprobs, honours a JSON schema, is what `build_llm` uses when asked (four in flight),
and dies with memrl even on SIGKILL. Skipped where no llama-server binary is installed (how to build it:
`memrl.llm.llama_server`; or `MEMRL_LLAMA_SERVER=/path/to/llama-server`)."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import LOCAL, needs_local

from memrl.errors import LocalModelError
from memrl.llm import llama_server as ls
from memrl.llm import local
from memrl.llm.base import Request
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.local import ALIAS, resolve_gguf
from memrl.llm.managed import ManagedLLM
from memrl.testing import Action, FakeOpenAIServer
from memrl.testing.server import chat_body
from memrl.types import Completion, Message, Usage


def _binary() -> Path | None:
    try:
        return ls.find_llama_server("auto")
    except LocalModelError:
        return None


BINARY = _binary() if LOCAL else None
needs_binary = pytest.mark.skipif(
    BINARY is None, reason="no llama-server binary (see memrl.llm.llama_server; or MEMRL_LLAMA_SERVER=path)"
)


@pytest.fixture(scope="module")
def server():
    srv = ls.LlamaServer(resolve_gguf("local"), binary=BINARY, n_ctx=1024).start()
    yield srv
    srv.stop()


def _llm(server) -> ManagedLLM:
    client = LiteLLMClient(
        f"openai/{ALIAS}", api_base=server.api_base, timeout_s=600, local=True, max_n=server.max_n
    )
    return ManagedLLM(client, name="local", max_concurrency=server.concurrency)


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


# ------------------------------------------------------------------------------ finding the binary


def test_finder_follows_the_environment(tmp_path, monkeypatch):
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ls, "_candidates", lambda: [fake])
    monkeypatch.delenv(ls.ENV, raising=False)
    assert ls.find_llama_server("off") is None
    assert ls.find_llama_server("auto") == fake
    monkeypatch.setenv(ls.ENV, "off")
    assert ls.find_llama_server("auto") is None
    monkeypatch.setenv(ls.ENV, str(fake))
    assert ls.find_llama_server("off") == fake
    monkeypatch.setenv(ls.ENV, str(tmp_path / "missing"))
    with pytest.raises(LocalModelError, match="no executable llama-server"):
        ls.find_llama_server("auto")
    monkeypatch.setattr(ls, "_candidates", lambda: [tmp_path / "missing"])
    monkeypatch.setenv(ls.ENV, "auto")
    assert ls.find_llama_server("off") is None


@needs_local
def test_a_found_binary_that_fails_falls_back_and_a_named_one_is_an_error(tmp_path, monkeypatch):
    fake = tmp_path / "llama-server"
    fake.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ls, "_candidates", lambda: [fake])
    monkeypatch.setattr(ls, "DEFAULT", "auto")
    monkeypatch.delenv(ls.ENV, raising=False)
    srv = local.shared_server("local", n_ctx=512)
    try:
        assert type(srv) is local.LocalServer and srv.concurrency == 2
    finally:
        srv.stop()
    monkeypatch.setenv(ls.ENV, str(fake))
    with pytest.raises(LocalModelError, match="cannot start"):
        local.shared_server("local", n_ctx=768)


# ------------------------------------------------------------------------------ samples per request


class SlotClient:
    """A raw client for a server with 4 slots: records each call's n and the samples in flight."""

    model, native_n, max_n = "slots", True, 4

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.in_flight = self.most = 0

    async def complete_once(self, request, n=1, seed=None):
        self.calls.append(n)
        self.in_flight += n
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= n
        return [Completion(text=f"s{i}", usage=Usage(completion_tokens=1, calls=1)) for i in range(n)]


async def test_a_group_larger_than_the_slots_is_split_and_samples_hold_slots():
    client = SlotClient()
    llm = ManagedLLM(client, name="slots", max_concurrency=4)
    req = Request.of([Message.user("q")], temperature=1.0, max_tokens=4)
    outs = await asyncio.gather(
        llm.complete(req, n=6), llm.complete(req, n=1, salt="x"), llm.complete(req, n=3)
    )
    assert [len(o) for o in outs] == [6, 1, 3]
    assert sorted(client.calls) == [1, 2, 3, 4], "6 samples are asked for as 4 + 2"
    assert client.most <= 4, "never more samples in flight than the server has slots"


async def test_every_choice_is_counted_where_usage_counts_one():
    """llama-server answers `n` choices with the usage of the first; memrl asks for logprobs and counts each
    choice's tokens from them (and drops them where the request did not ask for logprobs)."""
    lengths = [3, 5, 2, 4]
    body = chat_body(Action(text="x", completion_tokens=3), n=4) | {"usage": {
        "prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}  # fmt: skip
    for ch, k in zip(body["choices"], lengths, strict=True):
        ch["logprobs"] = {"content": [{"token": "a", "logprob": -0.1, "top_logprobs": []}] * k}
    with FakeOpenAIServer(default=Action(body=json.dumps(body))) as srv:
        client = LiteLLMClient("openai/local", api_base=srv.api_base, local=True, max_n=4)
        llm = ManagedLLM(client, name="local", max_concurrency=4)
        out = await llm.complete(Request.of([Message.user("q")], temperature=1.0, max_tokens=8), n=4)
        assert len(srv.requests) == 1 and srv.requests[0]["body"]["n"] == 4
        assert srv.requests[0]["body"]["logprobs"] is True and "top_logprobs" not in srv.requests[0]["body"]
        assert llm.ledger.total.completion_tokens == sum(lengths)
        assert [c.usage.completion_tokens for c in out] == lengths, "each choice counts its own tokens"
        assert [c.usage.prompt_tokens for c in out] == [10, 0, 0, 0], (
            "the prompt, evaluated once, counts once"
        )
        assert all(c.logprobs is None for c in out)


# ------------------------------------------------------------------------------ the real server


@needs_binary
async def test_four_requests_decode_together_with_logprobs(server):
    assert server.concurrency == 4
    assert httpx.get(f"http://{server.host}:{server.port}/props", timeout=5).json()["total_slots"] == 4
    busy: list[int] = []
    done = threading.Event()

    def watch() -> None:  # how many slots are decoding, sampled while the four requests run
        while not done.is_set():
            slots = httpx.get(f"http://{server.host}:{server.port}/slots", timeout=5).json()
            busy.append(sum(bool(s.get("is_processing")) for s in slots))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    req = Request.of(
        [Message.user("Write a short story about a cat.")],
        temperature=1.0,
        max_tokens=48,
        logprobs=True,
        top_logprobs=3,
    )
    try:
        out = await _llm(server).complete(req, n=4)
    finally:
        done.set()
        watcher.join()
    assert max(busy) == 4, f"slots decoding at once, sampled: {busy}"
    assert len(out) == 4 and len({c.text for c in out}) > 1
    # One call, one prompt evaluation: the first choice carries the prompt; each choice its own tokens.
    assert out[0].usage.prompt_tokens > 0 and all(c.usage.prompt_tokens == 0 for c in out[1:])
    for c in out:
        assert c.usage.completion_tokens == len(c.logprobs or ()) > 0
        assert c.logprobs and all(t.logprob <= 0 for t in c.logprobs)
        assert all(1 <= len(t.top) <= 4 for t in c.logprobs)


@needs_binary
async def test_schema_constrained_json(server):
    schema = {
        "type": "object",
        "properties": {"operations": {"type": "array", "maxItems": 2, "items": {
            "anyOf": [
                {"type": "object", "properties": {"op": {"const": "ADD"}, "content": {"type": "string", "maxLength": 60}},
                 "required": ["op", "content"]},
                {"type": "object", "properties": {"op": {"const": "DELETE"}, "id": {"type": "string", "maxLength": 8}},
                 "required": ["op", "id"]},
            ]}}},
        "required": ["operations"],
    }  # fmt: skip
    req = Request.of(
        [Message.user("Propose edits to a list of maths tips.")],
        temperature=0.3,
        max_tokens=200,  # enough for two operations of at most 60 characters: the schema bounds the rest
        json_schema=schema,
    )
    outs = await asyncio.gather(*(_llm(server).complete(req, salt=str(i)) for i in range(3)))
    for out in outs:
        data = json.loads(out[0].text)
        assert isinstance(data["operations"], list) and len(data["operations"]) <= 2
        for op in data["operations"]:
            assert {"ADD": {"op", "content"}, "DELETE": {"op", "id"}}[op["op"]] <= set(op)


@needs_binary
def test_build_llm_starts_it_with_four_in_flight(monkeypatch):
    from memrl.llm.factory import build_llm
    from memrl.spec_sections import ModelSpec

    monkeypatch.setenv(ls.ENV, str(BINARY))
    llm = build_llm(ModelSpec(name="local", n_ctx=512, max_concurrency=8))
    srv = local.shared_server("local", n_ctx=512)
    try:
        assert isinstance(srv, ls.LlamaServer) and srv.binary == BINARY
        assert llm._slots._value == 4  # type: ignore[attr-defined]
        assert llm.client.api_base == srv.api_base  # type: ignore[attr-defined]
    finally:
        srv.stop()


@needs_binary
def test_stop_ends_the_server_and_its_watcher():
    srv = ls.LlamaServer(resolve_gguf("local"), binary=BINARY, n_ctx=512).start()
    pid = srv.proc.pid
    watchers = _children(pid)
    assert len(watchers) == 1 and _alive(watchers[0])
    assert Path(f"/proc/{pid}/exe").resolve().name == BINARY.name  # memrl holds the server itself
    srv.stop()
    assert _gone([pid, *watchers])


CHILD = """
import os, sys, threading, time
os.environ["MEMRL_LLAMA_SERVER"] = sys.argv[1]
from memrl.llm.local import shared_server
started = []
t = threading.Thread(target=lambda: started.append(shared_server("local", n_ctx=512)))
t.start()
t.join()  # the thread that started the server is gone from here on
print(type(started[0]).__name__, started[0].proc.pid, flush=True)
time.sleep(600)
"""


@needs_binary
def test_server_outlives_its_starting_thread_and_dies_with_a_sigkilled_parent():
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(BINARY)], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        assert child.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(child.stdout, selectors.EVENT_READ)
        assert sel.select(240), "the child printed no server pid"
        kind, pid = child.stdout.readline().split()
        assert kind == "LlamaServer"
        pids = [int(pid), *_children(int(pid))]
        assert len(pids) == 2, "the server and its watcher"
        time.sleep(1.5)
        assert all(_alive(p) for p in pids), "the server died with the thread that started it"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert _gone(pids), "the server (or its watcher) outlived the memrl process that started it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
