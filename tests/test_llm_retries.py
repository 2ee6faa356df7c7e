"""The model layer at the wire: a real local HTTP server answers 429/500/401/... and memrl reacts."""

from __future__ import annotations

import json
import socket
import time

import pytest

from memrl.errors import AuthenticationError, BadRequestError, BudgetExceeded, ServerError, TransportError
from memrl.llm.base import Request
from memrl.llm.cache import ResponseCache
from memrl.llm.ledger import Ledger
from memrl.llm.litellm_adapter import LiteLLMClient, to_memrl_error
from memrl.llm.managed import ManagedLLM, RetryPolicy
from memrl.runner import run_task
from memrl.spec import TaskSpec, spec_from_mapping
from memrl.testing import Action, FakeOpenAIServer
from memrl.testing.faults import sums_rows
from memrl.testing.server import chat_body
from memrl.types import Message

REQ = Request.of([Message.user("What is 2+2?")], temperature=0.0, max_tokens=8)


def managed(server: FakeOpenAIServer, **kw) -> ManagedLLM:
    client = LiteLLMClient(
        "openai/fake", api_base=server.api_base, timeout_s=kw.pop("timeout_s", 5.0), local=True
    )
    retry = RetryPolicy(max_attempts=kw.pop("max_attempts", 5), max_wait_s=5.0, initial_s=0.05)
    return ManagedLLM(client, name="fake", retry=retry, **kw)


async def test_429_retry_after_then_500_then_success_counts_once():
    script = [Action(status=429, headers={"Retry-After": "1"}), Action(status=500), Action(text="4")]
    with FakeOpenAIServer(script) as srv:
        ledger = Ledger()
        llm = managed(srv, ledger=ledger)
        out = await llm.complete(REQ, phase="rollout")
    assert [c.text for c in out] == ["4"]
    assert len(srv.requests) == 3, "exactly one request per attempt: no hidden SDK retries"
    gap = srv.requests[1]["t"] - srv.requests[0]["t"]
    assert 0.95 <= gap < 2.0, f"waited {gap:.2f}s after Retry-After: 1"
    u = ledger.by_phase["rollout"]
    assert (u.prompt_tokens, u.completion_tokens, u.calls) == (10, 5, 1)


async def test_401_fails_at_once_with_clear_error():
    with FakeOpenAIServer(default=Action(status=401)) as srv:
        llm = managed(srv)
        t0 = time.perf_counter()
        with pytest.raises(AuthenticationError, match="API key"):
            await llm.complete(REQ)
    assert len(srv.requests) == 1
    assert time.perf_counter() - t0 < 3


async def test_400_not_retried():
    with FakeOpenAIServer(default=Action(status=400)) as srv, pytest.raises(BadRequestError):
        await managed(srv).complete(REQ)
    assert len(srv.requests) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Action(status=503),
        Action(body="{not json"),
        Action(empty_choices=True),
        Action(reset=True),
        Action(delay_s=1.5),
    ],
    ids=["503", "malformed-json", "empty-choices", "connection-reset", "timeout"],
)
async def test_transient_faults_are_retried(fault):
    with FakeOpenAIServer([fault], default=Action(text="fine")) as srv:
        out = await managed(srv, timeout_s=1.0).complete(REQ)
    assert out[0].text == "fine"
    assert len(srv.requests) == 2


async def test_attempts_are_bounded():
    with FakeOpenAIServer(default=Action(status=500)) as srv, pytest.raises(ServerError):
        await managed(srv, max_attempts=3).complete(REQ)
    assert len(srv.requests) == 3


async def test_cache_replays_without_calls_and_keeps_samples_distinct(tmp_path):
    texts = iter(["a", "b", "c", "d"])
    with FakeOpenAIServer() as srv:
        srv.script = [Action(text=next(texts)) for _ in range(4)]
        cache = ResponseCache(tmp_path / "cache.sqlite")
        first = await managed(srv, cache=cache).complete(REQ, n=3)
        assert sorted(c.text for c in first) == ["a", "b", "c"]
        ledger = Ledger()
        again = await managed(srv, cache=ResponseCache(tmp_path / "cache.sqlite"), ledger=ledger).complete(
            REQ, n=3
        )
        assert [c.text for c in again] == [c.text for c in first]
        assert len(srv.requests) == 3, "the replay sent nothing"
        assert ledger.total.calls == 0 and ledger.total.cached_calls == 3
        other = await managed(srv, cache=cache).complete(REQ, n=1, salt="epoch-2")
        assert other[0].text == "d" and len(srv.requests) == 4


async def test_a_server_that_ignores_n_gets_no_retries(tmp_path):
    """A provider memrl asks for n samples in one call but whose server answers with one (llama.cpp's
    ignores `n`): the sample is kept and the rest come one per call, seeded; nothing is retried."""
    one_choice = json.dumps(chat_body(Action(text="4"), 1))
    with FakeOpenAIServer(default=Action(body=one_choice)) as srv:
        llm = managed(srv, cache=ResponseCache(tmp_path / "cache.sqlite"), ledger=Ledger())
        llm.client.native_n = True  # as for a hosted OpenAI-compatible provider without api_base
        out = await llm.complete(REQ, n=4, phase="rollout")
        assert len(out) == 4 and len(srv.requests) == 4 and llm.attempts == 4
        assert [r["body"].get("n") for r in srv.requests] == [4, None, None, None]
        assert len({r["body"].get("seed") for r in srv.requests[1:]}) == 3
        assert llm.ledger.total.calls == 4 and llm.short_n == 1
        again = await llm.complete(REQ, n=4, phase="rollout")
        assert [c.text for c in again] == [c.text for c in out] and len(srv.requests) == 4  # all cached
    with FakeOpenAIServer() as srv:  # a server that honours n: one call, as before
        llm = managed(srv)
        llm.client.native_n = True
        assert len(await llm.complete(REQ, n=4)) == 4
        assert len(srv.requests) == 1 and srv.requests[0]["body"]["n"] == 4 and llm.short_n == 0


async def test_token_budget_stops_before_the_next_call():
    with FakeOpenAIServer() as srv:
        ledger = Ledger(max_tokens=20)
        llm = managed(srv, ledger=ledger)
        await llm.complete(REQ)  # 15 tokens
        await llm.complete(REQ)  # 30 tokens: allowed to finish
        with pytest.raises(BudgetExceeded, match="token budget"):
            await llm.complete(REQ)
    assert len(srv.requests) == 2


KEY_ENV = "MEMRL_AUTH_TEST_KEY"


def _sums_task(tmp_path, api_base: str, **model) -> TaskSpec:
    (tmp_path / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(40)))
    raw = {
        "name": "auth", "algorithm": "evaluate", "data": {"source": "sums.jsonl", "test_size": 30},
        "model": {"name": "openai/gpt-4o-mini", "api_base": api_base, "max_concurrency": 4, **model},
        "eval": {"k": 2, "max_tokens": 8},
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


@pytest.mark.parametrize("named", [True, False], ids=["api_key_env", "provider-default"])
def test_401_stops_the_run_at_once_and_names_the_key_variable(tmp_path, monkeypatch, named):
    monkeypatch.setenv(KEY_ENV, "sk-auth-test-0000000000")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-auth-test-1111111111")
    with FakeOpenAIServer(default=Action(status=401, delay_s=0.2)) as srv:
        spec = _sums_task(tmp_path, srv.api_base, **({"api_key_env": KEY_ENV} if named else {}))
        with pytest.raises(AuthenticationError) as e:
            run_task(spec, run_dir=tmp_path / "run")
        time.sleep(0.5)  # anything still queued would be sent by now
    assert f"the key in {KEY_ENV if named else 'OPENAI_API_KEY'} was refused" in str(e.value)
    assert len(srv.requests) <= spec.model.max_concurrency, f"{len(srv.requests)} requests after a 401"


def test_401_without_the_key_variable_set_says_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    client = LiteLLMClient("openai/fake", api_key_env=KEY_ENV)
    err = to_memrl_error(type("AuthenticationError", (Exception,), {"status_code": 401})(), "openai",
                         key_env=client.api_key_env)  # fmt: skip
    assert isinstance(err, AuthenticationError) and f"{KEY_ENV} is not set" in str(err)


async def test_refused_api_base_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    api_base = f"http://127.0.0.1:{port}/v1"
    client = LiteLLMClient("openai/fake", api_base=api_base, timeout_s=5.0, local=True)
    llm = ManagedLLM(client, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(TransportError) as e:
        await llm.complete(REQ)
    assert f"nothing answered at {api_base} (connection refused)" in str(e.value)
    assert "model.api_base" in str(e.value) and "500" not in str(e.value)


async def test_the_response_cache_keys_on_sampling_settings_of_model_extra(tmp_path, monkeypatch):
    """An answer drawn under other sampling settings of `model.extra` (top_p here) is never replayed for these:
    the same request asks the provider again; the same settings are answered from the cache. Settings that
    do not change the answer (`user`, which may hold an identity) do not key it."""
    from memrl.llm.factory import build_llm
    from memrl.spec import ModelSpec

    monkeypatch.setenv("FAKE_KEY", "sk-test")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FakeOpenAIServer(default=Action(text="4")) as srv:

        def llm(**extra):
            return build_llm(
                ModelSpec(name="openai/fake", api_base=srv.api_base, api_key_env="FAKE_KEY", extra=extra),
                cache=cache,
            )

        plain, wide = llm(), llm(top_p=0.5)
        assert plain.cache_name == "openai/fake" and wide.cache_name != plain.cache_name
        assert llm(user="someone").cache_name == "openai/fake"
        await plain.complete(REQ)
        await wide.complete(REQ)
        await llm(top_p=0.5).complete(REQ)  # same settings: from the cache
        await llm().complete(REQ)
        await llm(user="someone").complete(REQ)  # not a sampling setting: from the cache
    assert len(srv.requests) == 2
    assert srv.requests[1]["body"].get("top_p") == 0.5
