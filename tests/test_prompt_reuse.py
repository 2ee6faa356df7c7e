"""Prompt reuse by the embedded server: the log parser on real log lines, the meter's offsets, and the
real server counting what it reused (its last request's prefix, and with `prompt_cache_mb` saved states)."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import needs_local

from memrl.llm.base import Request
from memrl.llm.litellm_adapter import LiteLLMClient
from memrl.llm.local import ALIAS, LocalServer, resolve_gguf
from memrl.llm.local_log import PromptReuse, ReuseMeter, parse_log
from memrl.llm.managed import ManagedLLM
from memrl.types import Message

# Verbatim from a server log (llama-cpp-python 0.3.36, `--cache true`): a miss evaluating the whole prompt,
# a saved state, the same prompt again (one token replayed), another item's prompt sharing the system
# text, then a saved state loaded for an earlier item.
REAL_LOG = """\
INFO:     127.0.0.1:53422 - "GET /v1/models HTTP/1.1" 200 OK
Llama._create_completion: cache miss
llama_perf_context_print:        load time =       1.28 ms
llama_perf_context_print: prompt eval time =   19677.66 ms /  1346 tokens (   14.62 ms per token,    68.40 tokens per second)
llama_perf_context_print:        eval time =     579.71 ms /    15 runs   (   38.65 ms per token,    25.87 tokens per second)
llama_perf_context_print:       total time =   33157.54 ms /  1361 tokens
llama_perf_context_print:    graphs reused =         14
Llama._create_completion: cache save
Llama.save_state: got state size: 31374517
INFO:     127.0.0.1:34062 - "POST /v1/chat/completions HTTP/1.1" 200 OK
Llama.generate: 1345 prefix-match hit, remaining 1 prompt tokens to eval
llama_perf_context_print:        load time =       0.30 ms
llama_perf_context_print: prompt eval time =       0.00 ms /     1 tokens (    0.00 ms per token,      inf tokens per second)
llama_perf_context_print:        eval time =    1358.65 ms /    14 runs   (   97.05 ms per token,    10.30 tokens per second)
llama_perf_context_print:       total time =     469.01 ms /    17 tokens
Llama.generate: 1321 prefix-match hit, remaining 25 prompt tokens to eval
llama_perf_context_print:        load time =       0.30 ms
llama_perf_context_print: prompt eval time =     458.11 ms /    25 tokens (   18.32 ms per token,    54.57 tokens per second)
llama_perf_context_print:       total time =     670.35 ms /    32 tokens
state_read_data: - reading memory module
Llama._create_completion: cache hit
Llama.generate: 317 prefix-match hit, remaining 19 prompt tokens to eval
llama_perf_context_print:        load time =       0.24 ms
llama_perf_context_print: prompt eval time =     292.25 ms /    19 tokens (   15.38 ms per token,    65.01 tokens per second)
llama_perf_context_print:       total time =    1105.40 ms /    40 tokens
"""


def test_parse_real_log_lines():
    r = parse_log(REAL_LOG)
    assert (r.requests, r.state_loads) == (4, 1)
    assert r.evaluated_tokens == 1346 + 1 + 25 + 19
    assert r.reused_tokens == 1345 + 1321 + 317
    assert r.share == round(2983 / (2983 + 1391), 4)
    assert json.loads(r.model_dump_json())["share"] == r.share  # results.json carries it
    assert PromptReuse.model_validate(r.model_dump()) == r  # and reads back
    assert parse_log("INFO: started\n") == PromptReuse() and PromptReuse().share == 0.0


def test_parse_ignores_a_prefix_line_whose_request_has_not_ended():
    # the meter reads whole lines only; a request cut between its prefix line and its timings is not counted
    r = parse_log(
        REAL_LOG.split("state_read_data")[0] + "Llama.generate: 9 prefix-match hit, remaining 2 prompt"
    )
    assert r.requests == 3 and r.reused_tokens == 1345 + 1321


def test_a_request_without_a_prefix_line_reused_nothing():
    lines = REAL_LOG.splitlines(keepends=True)
    miss, hit = "".join(lines[1:5]), "".join(lines[10:13])  # the first request, then the one-token remainder
    r = parse_log(hit + miss)
    assert (r.requests, r.reused_tokens, r.evaluated_tokens) == (2, 1345, 1 + 1346)


def test_llama_servers_timing_lines_are_not_read_as_requests_without_reuse():
    # llama.cpp's own llama-server logs its timings in these words (tools/server print_timing), without the
    # prefix llama-cpp-python's lines carry; its prompt reuse is reported elsewhere
    lines = (
        "slot print_timing: id  0 | task 7 | \n"
        "prompt eval time =      12.52 ms /    19 tokens (    0.66 ms per token,  1517.57 tokens per second)\n"
        "       eval time =     101.34 ms /    16 tokens (    6.33 ms per token,   157.89 tokens per second)\n"
    )
    assert parse_log(lines) == PromptReuse()


class _Srv:
    def __init__(self, path):
        self.log_path = path


def test_meter_counts_only_what_was_logged_after_it_started(tmp_path):
    log = tmp_path / "server.log"
    first, rest = REAL_LOG.split("INFO:     127.0.0.1:34062")
    log.write_text(first)
    meter = ReuseMeter([_Srv(log)])
    assert meter.read() is None, "no request since the meter started"
    with log.open("a") as f:
        f.write(
            "INFO:     127.0.0.1:34062" + rest + "Llama.generate: 5 prefix-match hit, rem"
        )  # torn last line
    r = meter.read()
    assert r is not None and r.requests == 3 and r.reused_tokens == 1345 + 1321 + 317
    assert ReuseMeter([]).read() is None


def test_report_shows_the_runs_prompt_reuse(tmp_path):
    pytest.importorskip("matplotlib")
    from memrl.report import build_report

    (tmp_path / "spec.yaml").write_text("name: reuse\nmodel: {name: local}\n")
    reuse = parse_log(REAL_LOG)
    (tmp_path / "results.json").write_text(
        json.dumps({"status": "finished", "prompt_reuse": reuse.model_dump()})
    )
    page = build_report(tmp_path, tmp_path / "out").html.read_text()
    assert "local prompt tokens" in page and "1,391 evaluated, 2,983 reused (68 %)" in page


def test_prompt_cache_setting_reaches_the_server_command(tmp_path):
    gguf = tmp_path / "m.gguf"
    assert "--cache" not in LocalServer(gguf).command()
    cmd = LocalServer(gguf, prompt_cache_mb=64).command()
    assert cmd[cmd.index("--cache") + 1] == "true" and cmd[cmd.index("--cache_size") + 1] == str(64 << 20)


# ------------------------------------------------------------------ the real server

SYSTEM = "You are a careful problem solver. " + " ".join(
    f"Lesson {i}: check every unit of a quantity before adding it to another." for i in range(12)
)


def _llm(server) -> ManagedLLM:
    return ManagedLLM(
        LiteLLMClient(f"openai/{ALIAS}", api_base=server.api_base, local=True), max_concurrency=2
    )


def _ask(llm: ManagedLLM, question: str):
    req = Request.of([Message.system(SYSTEM), Message.user(question)], temperature=0.0, max_tokens=8)
    return llm.complete(req)


@needs_local
def test_real_server_reuses_the_shared_prefix(local_server):
    meter = ReuseMeter([local_server])
    llm = _llm(local_server)
    first = asyncio.run(_ask(llm, "What is 2 + 2?"))[0]
    second = asyncio.run(_ask(llm, "What is 7 * 6? Say only the number."))[0]
    r = meter.read()
    assert r is not None and r.requests == 2
    assert r.evaluated_tokens + r.reused_tokens == first.usage.prompt_tokens + second.usage.prompt_tokens
    assert r.reused_tokens >= 150, "the second request shares the system text (~170 tokens) with the first"
    assert r.reused_tokens < second.usage.prompt_tokens, "its own question is evaluated"


@needs_local
def test_real_server_prompt_cache_loads_an_earlier_items_state():
    # A, B, then A again: without the cache A's second turn shares only the system text with B, the request
    # before it; with it, A's saved state gives its whole first prompt back.
    with LocalServer(resolve_gguf("local"), n_threads=1, prompt_cache_mb=64) as srv:
        llm, meter = _llm(srv), ReuseMeter([srv])
        qa = "What is 12 + 30? Think about it step by step, then say only the number."
        a = asyncio.run(_ask(llm, qa))[0]
        asyncio.run(_ask(llm, "Name a colour."))
        req = Request.of(
            [
                Message.system(SYSTEM),
                Message.user(qa),
                Message.assistant(a.text),
                Message.user("Are you sure?"),
            ],
            temperature=0.0,
            max_tokens=8,
        )
        asyncio.run(llm.complete(req))
        r = meter.read()
    assert r is not None and r.requests == 3 and r.state_loads >= 1


@needs_local
@pytest.mark.timeout(300)
def test_run_reports_prompt_reuse(tmp_path):
    from memrl.runner import run_task
    from memrl.spec import spec_from_mapping

    data = tmp_path / "items.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(3))
    )
    spec = spec_from_mapping(
        {"name": "reuse", "algorithm": "evaluate", "model": "local", "data": {"source": str(data), "test_size": 2},
         "prompt": {"system": SYSTEM}, "eval": {"max_tokens": 8}, "run": {"dir": str(tmp_path / "runs")}},
        base_dir=tmp_path,
    )  # fmt: skip
    res = run_task(spec, run_dir=tmp_path / "run")
    r = res.prompt_reuse
    assert r is not None and r.requests == res.usage["total"]["calls"] == 2
    assert r.reused_tokens >= 150 and 0 < r.share < 1
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["prompt_reuse"]["share"] == r.share
