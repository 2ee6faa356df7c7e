"""Fault injection for FakeOpenAIServer, a deterministic toy model for it, and a soak harness.

- `FaultMix` says how often each fault happens; `FaultInjector` picks, for every request, a fault or
  none. The pick is a pure function of the request body and how many times that body was sent before,
  so a run replays the same faults whatever the order of concurrent requests, and every request is
  answered by its `max_in_a_row + 1`-th attempt at the latest (a soak stays bounded).
- `toy_answer` answers sums questions ("What is 3 + 4?") as a policy, and the Training-Free GRPO
  learner calls (summaries, lessons, library operations) as a learner, from the request alone.
- `run_soak` drives a whole Training-Free GRPO run through the real litellm adapter against a faulty
  server and counts what happened (see `SoakReport`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from memrl.testing.server import Action, FakeOpenAIServer

__all__ = ["FAULT_KINDS", "FaultMix", "FaultInjector", "toy_answer", "sums_rows", "SoakReport", "run_soak"]

#: Every fault the injector knows. `slow` and `content_filter` are answers, the others failures.
FAULT_KINDS = (
    "429_retry_after", "429_bare", "500", "503", "timeout", "reset", "reset_mid_body",
    "malformed_json", "empty_choices", "content_filter", "slow",
)  # fmt: skip


class FaultMix(BaseModel):
    """Probability of each fault per request (the rest are answered normally)."""

    rates: dict[str, float] = Field(
        default_factory=lambda: {
            "429_retry_after": 0.03,
            "429_bare": 0.03,
            "500": 0.04,
            "503": 0.03,
            "timeout": 0.004,
            "reset": 0.03,
            "reset_mid_body": 0.02,
            "malformed_json": 0.03,
            "empty_choices": 0.02,
            "content_filter": 0.005,
            "slow": 0.01,
        }
    )
    client_timeout_s: float = 1.0  # a `timeout` answers this much later than the client waits, plus 0.6 s
    slow_s: float = 0.25  # a `slow` answer comes this late, within the client's timeout

    def action(self, kind: str) -> Action:
        return {
            "429_retry_after": Action(status=429, headers={"Retry-After": "1"}),
            "429_bare": Action(status=429),
            "500": Action(status=500),
            "503": Action(status=503),
            "timeout": Action(delay_s=self.client_timeout_s + 0.6),
            "reset": Action(reset=True),
            "reset_mid_body": Action(reset_after_bytes=48),
            "malformed_json": Action(body='{"id": "chatcmpl-cut", "choices": [{"index": 0, "mess'),
            "empty_choices": Action(empty_choices=True),
            "content_filter": Action(text="", finish_reason="content_filter"),
            "slow": Action(delay_s=self.slow_s),
        }[kind]


class FaultInjector:
    """The `faults` hook of FakeOpenAIServer: a fault for a request, or None to answer it."""

    def __init__(self, mix: FaultMix | None = None, *, seed: int = 0, max_in_a_row: int = 3) -> None:
        self.mix = mix or FaultMix()
        unknown = set(self.mix.rates) - set(FAULT_KINDS)
        if unknown or sum(self.mix.rates.values()) > 1:
            raise ValueError(f"fault rates must name known kinds {FAULT_KINDS} and sum to at most 1")
        self.seed = seed
        self.max_in_a_row = max_in_a_row
        self.injected: Counter[str] = Counter()
        self._sent: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> tuple[str, Action] | None:
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            attempt = self._sent[key]
            self._sent[key] += 1
        if attempt >= self.max_in_a_row:
            return None
        u = random.Random(f"{self.seed}:{key}:{attempt}").random()
        for kind, rate in self.mix.rates.items():
            if u < rate:
                with self._lock:
                    self.injected[kind] += 1
                return kind, self.mix.action(kind)
            u -= rate
        return None


# ----------------------------------------------------------------------------------- the toy model

LESSONS = [
    "When adding two numbers, count up from the larger one",
    "When the answer is requested, reply with the bare number only",
    "When a sum looks too large, recheck the carry before answering",
    "When both numbers are equal, double one of them",
    "When a number is close to ten, round it first and adjust",
    "When unsure, add the ones digits before the tens digits",
]


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")


def toy_answer(body: dict[str, Any]) -> str:
    """A deterministic policy and learner for sums questions, from an OpenAI chat request body.

    Rollouts are right for even seeds and wrong for odd ones, and always right when a == b (so some
    groups have zero advantage); learner calls answer with lessons and operations in the JSON asked for.
    """
    user = str((body.get("messages") or [{}])[-1].get("content", ""))
    schema = _schema(body)
    if "Summarise" in user:
        return "The attempt added the two numbers."
    if schema is None:
        nums = [int(x) for x in re.findall(r"\d+", user)[:2]]
        if len(nums) < 2:
            return "I do not know."
        a, b = nums
        right = a == b or int(body.get("seed") or 0) % 2 == 0
        return str(a + b if right else a + b + 1)
    if "lessons" in schema.get("properties", {}):
        a = int((re.findall(r"\d+", user) or ["0"])[0])
        return json.dumps({"lessons": [LESSONS[a % len(LESSONS)]]})
    new = re.findall(r"^- (When .*)$", user, re.M)
    ids = re.findall(r"^\[(L\d{4})\]", user, re.M)
    ops: list[dict[str, Any]] = [{"op": "ADD", "content": t} for t in new]
    if ids and len(ids) % 2 == 0:
        ops.append({"op": "UPDATE", "id": ids[0], "content": f"{LESSONS[len(ids) % len(LESSONS)]} twice"})
    if len(ids) >= 3:
        ops.append({"op": "DELETE", "id": ids[-1]})
    if len(ids) == 5:
        ops.append({"op": "DELETE", "id": "L9999"})  # an unknown id: rejected and logged, never applied
    return json.dumps({"operations": ops})


def sums_rows(n: int) -> list[dict[str, str]]:
    """n sums questions, a quarter of them a + a."""
    rows = []
    for i in range(n):
        a = 1 + i % 9
        b = a if i % 4 == 0 else 1 + (i * 7 + 3) % 13
        rows.append({"id": f"s{i:03d}", "question": f"What is {a} + {b}?", "answer": str(a + b)})
    return rows


# ----------------------------------------------------------------------------------- the soak


class SoakReport(BaseModel):
    """What a soak run sent, what the server did, and what the run kept."""

    requests_sent: int
    faults: dict[str, int]
    outcomes: dict[str, int]
    attempts: int  # HTTP attempts the client made (ManagedLLM's count)
    calls: int  # model calls recorded by the ledger as paid (calls.jsonl, not cached)
    retries: int  # attempts beyond the first of each call
    served: int  # complete answers with choices the server delivered (what a provider bills)
    late_answers: int  # answers written after the client had timed out
    duplicate_charges: int  # answers delivered for a request body already answered before
    ledger_vs_served: int  # calls recorded minus answers delivered: 0 when every charge is counted once
    usage_calls: int  # calls in usage.json's total
    rollouts_expected: int
    rollouts_kept: int
    eval_samples_expected: int
    eval_samples_kept: int
    content_filtered: int  # samples withheld by the content filter, kept with reward 0
    rejected_ops: int
    lessons: int
    status: str
    seconds: float

    @property
    def rollouts_lost(self) -> int:
        return (
            self.rollouts_expected - self.rollouts_kept + self.eval_samples_expected - self.eval_samples_kept
        )

    def problems(self) -> list[str]:
        """Everything that should be zero and is not."""
        out = []
        if self.status != "finished":
            out.append(f"run status {self.status}")
        if self.rollouts_lost:
            out.append(f"{self.rollouts_lost} rollouts lost")
        if self.duplicate_charges:
            out.append(f"{self.duplicate_charges} duplicate charges")
        if self.ledger_vs_served or self.usage_calls != self.served:
            out.append(f"ledger {self.calls} / usage {self.usage_calls} calls vs {self.served} served")
        if self.attempts != self.requests_sent:
            out.append(f"{self.attempts} attempts made but {self.requests_sent} requests arrived")
        return out


def run_soak(
    workdir: str | Path,
    *,
    items: int = 64,
    test_size: int = 16,
    epochs: int = 3,
    steps_per_epoch: int = 6,
    batch_size: int = 8,
    group_size: int = 6,
    k: int = 4,
    mix: FaultMix | None = None,
    seed: int = 0,
    concurrency: int = 8,
) -> SoakReport:
    """A Training-Free GRPO run over the litellm adapter against a faulty server; returns the counts.

    Sets `MEMRL_SOAK_KEY` in the environment (a dummy key the adapter sends)."""
    from memrl.context import RunContext
    from memrl.llm.managed import RetryPolicy
    from memrl.runner import run_task
    from memrl.runs import RunDir
    from memrl.spec import spec_from_mapping

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sums_rows(items)))
    mix = mix or FaultMix()
    injector = FaultInjector(mix, seed=seed, max_in_a_row=4)
    os.environ.setdefault("MEMRL_SOAK_KEY", "sk-soak-dummy")
    attempts = 8  # > max_in_a_row: every call is answered within its attempts
    seen: dict[str, Any] = {}

    def setup(ctx: RunContext) -> None:  # short backoff: the soak counts retries, it need not wait long
        ctx.llm.retry = RetryPolicy(max_attempts=attempts, max_wait_s=0.2, initial_s=0.02)
        seen["llm"] = ctx.llm

    with FakeOpenAIServer(responder=toy_answer, faults=injector) as srv:
        raw = {
            "name": "soak", "algorithm": "tfgrpo",
            "model": {"name": "openai/gpt-4o-mini", "api_base": srv.api_base, "api_key_env": "MEMRL_SOAK_KEY",
                      "max_concurrency": concurrency, "timeout_s": mix.client_timeout_s,
                      "max_attempts": attempts, "max_retry_wait_s": 0.2},
            "data": {"source": str(data), "test_size": test_size, "seed": seed},
            "prompt": {"system": "You are a careful calculator. Reply with the number only."},
            "eval": {"k": k, "max_tokens": 8, "temperature": 0.7},
            "tfgrpo": {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size,
                       "group_size": group_size},
            "run": {"dir": str(workdir / "runs"), "seed": seed},
        }  # fmt: skip
        t0 = time.perf_counter()
        res = run_task(spec_from_mapping(raw, base_dir=workdir), run_dir=workdir / "run", setup=setup)
        seconds = time.perf_counter() - t0
        records = list(srv.requests)

    run = RunDir(workdir / "run")
    calls = [c for c in run.read_jsonl("calls.jsonl") if not c["cached"]]
    served = [r for r in records if r.get("outcome") == "ok" and r["fault"] != "timeout"]
    bodies = Counter(json.dumps(r["body"], sort_keys=True) for r in served)
    steps = sorted((workdir / "run" / "rollouts").glob("step-*.json"))
    rollouts = [r for p in steps for g in json.loads(p.read_text()) for r in g]
    evals = [s for p in sorted((workdir / "run").glob("eval-epoch*.jsonl")) for s in _samples(p)]
    usage = run.read_json("usage.json", default={}).get("total", {})
    return SoakReport(
        requests_sent=len(records),
        faults=dict(sorted(Counter(r["fault"] for r in records if r["fault"]).items())),
        outcomes=dict(sorted(Counter(str(r.get("outcome")) for r in records).items())),
        attempts=seen["llm"].attempts,
        calls=len(calls),
        retries=sum(c["attempts"] for c in calls) - len(calls),
        served=len(served),
        late_answers=sum(r["fault"] == "timeout" for r in records),
        duplicate_charges=sum(n - 1 for n in bodies.values()),
        ledger_vs_served=len(calls) - len(served),
        usage_calls=int(usage.get("calls", 0)),
        rollouts_expected=epochs * steps_per_epoch * batch_size * group_size,
        rollouts_kept=len(rollouts),
        eval_samples_expected=(epochs + 1) * test_size * k,
        eval_samples_kept=len(evals),
        content_filtered=sum(r["completion"]["finish_reason"] == "content_filter" for r in rollouts)
        + sum(s["finish_reason"] == "content_filter" for s in evals),
        rejected_ops=sum(1 for e in run.read_jsonl("events.jsonl") if e.get("event") == "rejected_op"),
        lessons=int(res.results.get("learning", {}).get("lessons", 0)),
        status=res.status,
        seconds=round(seconds, 1),
    )


def _samples(path: Path) -> list[dict[str, Any]]:
    return [s for line in path.read_text().splitlines() if line.strip() for s in json.loads(line)["samples"]]
