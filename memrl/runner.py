"""Run a task file end to end: run directory, model, data, verifier, algorithm, results.

This is the library function behind `memrl run`; the CLI only parses arguments and prints what it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from memrl.context import NoProgress, Progress, RunContext
from memrl.errors import BudgetExceeded
from memrl.llm.cache import ResponseCache
from memrl.llm.factory import build_llm
from memrl.llm.ledger import Ledger
from memrl.llm.local_log import PromptReuse, ReuseMeter
from memrl.llm.managed import ManagedLLM, RawClient, RetryPolicy
from memrl.runs import RunDir, redact
from memrl.spec import TaskSpec

__all__ = [
    "RunResult",
    "RunContext",
    "Progress",
    "NoProgress",
    "run_task",
    "resume_task",
    "open_run",
    "open_context",
    "register_algorithm",
    "ALGORITHMS",
]

log = logging.getLogger(__name__)


class RunResult(BaseModel):
    run_dir: str
    status: str  # finished | budget; results.json may also say error or interrupted
    message: str = ""
    results: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, dict[str, float]] = Field(default_factory=dict)
    seconds: float = 0.0
    prompt_reuse: PromptReuse | None = None  # prompt tokens an embedded local server evaluated and reused


def open_run(
    spec: TaskSpec, *, resume: bool = False, run_dir: str | Path | None = None
) -> tuple[RunDir, TaskSpec]:
    if run_dir is not None:
        run = RunDir(run_dir)
        if resume and (run.path / "spec.yaml").exists():
            return run, spec
        run.make()
        run.write_spec(spec)
        return run, spec
    if resume:
        return RunDir.latest(spec), spec
    return RunDir.create(spec), spec


def open_context(spec: TaskSpec, run_dir: str | Path, *, client: RawClient | None = None) -> RunContext:
    """The context an algorithm would get, for code that drives the pieces itself (benchmarks, notebooks):
    the run directory (created, or reopened as is), the policy LLM with cache and ledger, the split and the
    verifier. Close `ctx.llm.cache` when done."""
    run, spec = open_run(spec, resume=True, run_dir=run_dir)
    return _build_context(spec, run, client)


def _build_context(spec: TaskSpec, run: RunDir, client: RawClient | None = None) -> RunContext:
    from memrl.tasks.datasets import load_split
    from memrl.tasks.verifiers import build_verifier, drop_unjudgeable

    if spec.data.source.startswith("textworld:"):  # interactive games, not question items
        from memrl.tasks.textworld_env import textworld_split

        split = textworld_split(spec.data)
    else:  # items the verifier cannot judge fail here, before any model call, not mid-run
        split = drop_unjudgeable(load_split(spec.data, spec.base_dir), spec.verifier.kind)
    verifier = None if spec.verifier.kind == "llm_judge" else build_verifier(spec.verifier, spec.base_dir)
    cache = None
    if spec.cache.enabled:
        path = Path(spec.cache.path) if spec.cache.path else run.file("cache.sqlite")
        cache = ResponseCache(path)
    ledger = Ledger(
        max_tokens=spec.budget.max_tokens,
        max_usd=spec.budget.max_usd,
        calls_path=run.file("calls.jsonl"),
        start=Ledger.load_phases(run.file("usage.json")),
    )
    if client is not None:
        retry = RetryPolicy(max_attempts=spec.model.max_attempts, max_wait_s=spec.model.max_retry_wait_s)
        llm = ManagedLLM(
            client, cache=cache, ledger=ledger, max_concurrency=spec.model.max_concurrency, retry=retry
        )
    else:
        llm = build_llm(spec.model, cache=cache, ledger=ledger)
    if verifier is None:
        from memrl.tasks.judge import LLMJudge

        judge_spec = spec.verifier.judge_model
        verifier = LLMJudge(build_llm(judge_spec, cache=cache, ledger=ledger) if judge_spec else llm)
    return RunContext(spec, run, llm, split, verifier)


async def _run_evaluate(ctx: RunContext) -> dict[str, Any]:
    from memrl.algos.evaluate import evaluate_items

    res = await evaluate_items(
        ctx.llm, ctx.verifier, ctx.split.test,
        prompt=ctx.spec.prompt, cfg=ctx.spec.eval, run=ctx.run, label="eval-test", progress=ctx.progress,
        act=ctx.spec.act,
    )  # fmt: skip
    return {"eval-test": res.model_dump()}


Algorithm = Callable[[RunContext], Awaitable[dict[str, Any]]]

#: `algorithm:` name -> the coroutine that runs it, or "module:function" imported on first use.
ALGORITHMS: dict[str, Algorithm | str] = {
    "evaluate": _run_evaluate,
    "tfgrpo": "memrl.algos.tfgrpo:run_tfgrpo",
    "memento": "memrl.algos.memento:run_memento",
}


def register_algorithm(name: str, run: Algorithm | str) -> None:
    """Make `algorithm: name` run `run(ctx)` (a coroutine function, or its "module:function" path)."""
    ALGORITHMS[name] = run


async def _dispatch(ctx: RunContext) -> dict[str, Any]:
    target = ALGORITHMS.get(ctx.spec.algorithm)
    if target is None:
        raise NotImplementedError(
            f"algorithm {ctx.spec.algorithm!r} is not registered ({', '.join(ALGORITHMS)})"
        )
    if isinstance(target, str):
        module, _, name = target.partition(":")
        target = getattr(importlib.import_module(module), name)
    return await target(ctx)


def run_task(
    spec: TaskSpec,
    *,
    resume: bool = False,
    run_dir: str | Path | None = None,
    setup: Callable[[RunContext], None] | None = None,
    client: RawClient | None = None,
) -> RunResult:
    """Run (or resume) a task. A budget stop returns status 'budget' with everything learned saved.

    `client` replaces the model the spec names with any raw client (a test double, a custom provider);
    it still gets the run's cache, budgets, retries and concurrency limit.
    """
    run, spec = open_run(spec, resume=resume, run_dir=run_dir)
    if run.remove_stale_temp():
        log.info("removed temporary files of writes interrupted in %s", run.path)
    t0 = time.perf_counter()
    try:
        ctx = _build_context(spec, run, client)
        if setup:
            setup(ctx)
    except BaseException:  # a bad data file, verifier, model name...: nothing to keep
        run.discard()
        raise
    meter = ReuseMeter()
    status, message, results = "finished", "", {}
    try:
        results = asyncio.run(_dispatch(ctx))
    except BudgetExceeded as e:
        status, message = "budget", str(e)
        log.warning("%s", e)
    except BaseException as e:
        _close(ctx)
        _stopped(ctx, e, time.perf_counter() - t0, meter.read())
        raise
    _close(ctx)
    out = RunResult(
        run_dir=str(run.path),
        status=status,
        message=message,
        results=results,
        usage=ctx.llm.ledger.snapshot(),
        seconds=time.perf_counter() - t0,
        prompt_reuse=meter.read(),
    )
    run.write_json("results.json", out.model_dump())
    return out


def _close(ctx: RunContext) -> None:
    ctx.save_usage()
    ctx.llm.ledger.close()
    if ctx.llm.cache is not None:
        ctx.llm.cache.close()


def _stopped(ctx: RunContext, exc: BaseException, seconds: float, reuse: PromptReuse | None) -> None:
    """A run stopped by an error: a new run no model call answered leaves nothing behind (a 401, a refused
    connection); any other keeps its folder, with results.json saying why, for `memrl resume`."""
    usage = ctx.llm.ledger.total
    if usage.calls + usage.cached_calls == 0 and ctx.run.discard():
        return
    interrupted = isinstance(exc, KeyboardInterrupt)
    out = RunResult(
        run_dir=str(ctx.run.path),
        status="interrupted" if interrupted else "error",
        message="interrupted" if interrupted else f"{type(exc).__name__}: {exc}",
        usage=ctx.llm.ledger.snapshot(),
        seconds=seconds,
        prompt_reuse=reuse,
    )
    saved = redact(out.model_dump())  # a provider's error may quote a key
    with contextlib.suppress(OSError):  # never hide the error that stopped the run
        ctx.run.write_json("results.json", saved)
    log.warning(
        "run stopped (%s); %s keeps what was done: memrl resume continues it", saved["message"], ctx.run.path
    )


def resume_task(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    *,
    setup: Callable[[RunContext], None] | None = None,
    client: RawClient | None = None,
) -> RunResult:
    """Continue an interrupted run from its directory, with the spec it saved (`memrl resume RUN`)."""
    spec = RunDir(run_dir).load_spec(overrides)
    return run_task(spec, resume=True, run_dir=run_dir, setup=setup, client=client)
