"""Overhead of memrl's Training-Free GRPO step against direct litellm calls making the same requests.

An instant local OpenAI-compatible server answers every request (JSON where a schema asks for it, else a
number: rollouts, evaluation answers and the learner's per-rollout summaries). memrl runs training steps (rollouts, verification, summaries, lesson extraction,
proposals, reconciliation, library write, checkpoint); the server records every request body; then the
same bodies are sent again with plain `litellm.acompletion` at the same concurrency, and with the plain
openai SDK (what a hand-written loop would use; memrl itself posts to an unpriced OpenAI-compatible server
such as this one over plain httpx, `memrl.llm.openai_direct`). The ratios are the wall time memrl adds around the model calls (cache, ledger,
retries, prompts, parsing, file writes); against litellm it also gains what skipping litellm saves.

Each repeat pairs one memrl run with one replay of its requests, in alternating order, and the figure is
the median of the per-repeat ratios (a pair runs seconds apart, so load that comes and goes hits both
sides alike). A small unmeasured run first pays the one-off imports. A full run merges its figure into
bench/results/performance.json under `tfgrpo_overhead_ratio` (against litellm, the issue's baseline) and
`tfgrpo_overhead_ratio_vs_sdk`.

    python bench/bench_tfgrpo_step.py            # 4 steps of 8 queries x 8 rollouts, 5 repeats
    python bench/bench_tfgrpo_step.py --smoke    # 1 step of 4 x 4 (CI), saves nothing
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.performance import RESULTS, save_figures  # noqa: E402
from memrl.llm.litellm_adapter import LiteLLMClient, import_litellm  # noqa: E402
from memrl.runner import run_task  # noqa: E402
from memrl.spec import spec_from_mapping  # noqa: E402
from memrl.testing import Action, FakeOpenAIServer  # noqa: E402


class InstantServer(FakeOpenAIServer):
    """Answers from the request: JSON where a schema asks for it, else a number. The plain-text requests
    are not all rollouts: the learner summarises each rollout of a mixed group in plain text too, so 4 steps
    of 8 x 8 send 256 rollouts + up to 256 summaries + 2 evaluation answers (514 when every group is mixed).
    memrl's ledger (`RunResult.usage`) counts each phase's calls."""

    def _next(self, record: dict[str, Any]) -> Action:
        with self._lock:
            self.requests.append(record)
        body = record["body"]
        schema = (body.get("response_format") or {}).get("schema") or {}
        props = schema.get("properties", {})
        if "lessons" in props:
            return Action(text=json.dumps({"lessons": ["When adding numbers, count on from the larger one"]}))
        if "operations" in props:
            return Action(
                text=json.dumps(
                    {"operations": [{"op": "ADD", "content": "When summing, check the carry digit"}]}
                )
            )
        user = body["messages"][-1]["content"]
        nums = [int(x) for x in re.findall(r"\d+", user)[:2]] or [0]
        right = (hash(json.dumps(body, sort_keys=True)) % 2) == 0
        return Action(text=str(sum(nums) + (0 if right else 1)))


def make_spec(tmp: Path, api_base: str, steps: int, batch: int, group: int) -> Any:
    data = tmp / "sums.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{i}",
                    "question": f"What is {i % 9 + 1} + {i % 7 + 2}?",
                    "answer": str(i % 9 + i % 7 + 3),
                }
            )
            + "\n"
            for i in range(64)
        )
    )
    return spec_from_mapping(
        {
            "name": "bench",
            "algorithm": "tfgrpo",
            "model": {"name": "openai/fake", "api_base": api_base, "max_concurrency": 8},
            "data": {"source": str(data), "test_size": 1},
            "eval": {"k": 1, "max_tokens": 16},
            "tfgrpo": {"epochs": 1, "batch_size": batch, "group_size": group, "steps_per_epoch": steps},
            "run": {"dir": str(tmp / "runs")},
            "diversity": {"embedder": "hash-64"},
        },  # fmt: skip
        base_dir=tmp,
    )


async def replay(bodies: list[dict[str, Any]], api_base: str, concurrency: int) -> float:
    litellm = import_litellm()
    gate = asyncio.Semaphore(concurrency)

    async def one(b: dict[str, Any]) -> None:
        kw = {k: v for k, v in b.items() if k not in ("model", "messages")}
        async with gate:
            await litellm.acompletion(
                model="openai/fake",
                messages=b["messages"],
                api_base=api_base,
                api_key="x",
                num_retries=0,
                **kw,
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    return time.perf_counter() - t0


def run_memrl(steps: int, batch: int, group: int) -> tuple[float, list[dict[str, Any]], dict[str, int]]:
    """One memrl run on a fresh server: wall seconds, the request bodies it sent, and its calls by phase."""
    with tempfile.TemporaryDirectory() as d, InstantServer() as srv:
        tmp = Path(d)
        spec = make_spec(tmp, srv.api_base, steps, batch, group)
        client = LiteLLMClient("openai/fake", api_base=srv.api_base, local=True)
        t0 = time.perf_counter()
        res = run_task(spec, run_dir=tmp / "run", client=client)
        wall = time.perf_counter() - t0
        assert res.status == "finished", res.message
        calls = {k: int(v["calls"]) for k, v in res.usage.items() if k != "total"}
        assert sum(calls.values()) == len(srv.requests), "the ledger counts every request the server saw"
        return wall, [r["body"] for r in srv.requests], calls


async def replay_sdk(bodies: list[dict[str, Any]], api_base: str, concurrency: int) -> float:
    """The same requests through the openai SDK, as a hand-written loop would send them."""
    import openai

    client = openai.AsyncOpenAI(base_url=api_base, api_key="x", max_retries=0)
    known = set(inspect.signature(client.chat.completions.create).parameters)
    gate = asyncio.Semaphore(concurrency)

    async def one(b: dict[str, Any]) -> None:
        extra = {k: v for k, v in b.items() if k not in known}  # server settings go in the body, as sent
        async with gate:
            await client.chat.completions.create(
                **{k: v for k, v in b.items() if k in known}, **({"extra_body": extra} if extra else {})
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    return time.perf_counter() - t0


def run_direct(bodies: list[dict[str, Any]]) -> float:
    with InstantServer() as srv:
        return asyncio.run(replay(bodies, srv.api_base, 8))


def run_sdk(bodies: list[dict[str, Any]]) -> float:
    with InstantServer() as srv:
        return asyncio.run(replay_sdk(bodies, srv.api_base, 8))


def save(value: float, load: tuple[float, ...], path: Path = RESULTS, sdk: float | None = None) -> None:
    """Merge these figures into the results file, keeping every other key."""
    figures = {"tfgrpo_overhead_ratio": value} | ({"tfgrpo_overhead_ratio_vs_sdk": sdk} if sdk else {})
    save_figures("bench_tfgrpo_step.py", figures, load, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    args = ap.parse_args()
    steps, batch, group = (1, 4, 4) if args.smoke else (4, 8, 8)
    repeats = 1 if args.smoke else args.repeats
    load0 = os.getloadavg()
    if not args.smoke:
        run_direct(run_memrl(1, 4, 4)[1])  # warm-up: imports and first-use costs, unmeasured
    rows = []  # (memrl wall, direct litellm wall, direct SDK wall)
    bodies: list[dict[str, Any]] = []
    calls: dict[str, int] = {}
    for i in range(repeats):
        if i % 2:  # direct first, replaying the previous run's requests (the same ones: answers are a
            dw, sw = run_direct(bodies), run_sdk(bodies)  # function of the request)
            mw, bodies, calls = run_memrl(steps, batch, group)
        else:
            mw, bodies, calls = run_memrl(steps, batch, group)
            dw, sw = run_direct(bodies), run_sdk(bodies)
        rows.append((mw, dw, sw))
    load1 = os.getloadavg()
    n_req = len(bodies)
    ratios = [mw / dw for mw, dw, _ in rows]
    m, dct = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
    print(
        f"training steps: {steps} x {batch} queries x {group} rollouts (+ 2 held-out evaluations of 1 item)"
    )
    by_phase = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
    print(f"requests per run: {n_req} ({by_phase}; {steps * batch * group} rollouts)")
    print(f"memrl run_task:   {m:.3f} s  ({1000 * m / n_req:.2f} ms/request)")
    print(f"direct litellm:   {dct:.3f} s  ({1000 * dct / n_req:.2f} ms/request)")
    sdk = statistics.median(r[2] for r in rows)
    print(f"direct openai SDK: {sdk:.3f} s  ({1000 * sdk / n_req:.2f} ms/request)")
    ratio = statistics.median(ratios)
    print(
        f"overhead ratio (memrl / direct litellm): {ratio:.2f}x   (median of {repeats} paired repeats, "
        f"range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    sdk_ratios = [mw / sw for mw, _, sw in rows]
    sdk_ratio = statistics.median(sdk_ratios)
    print(
        f"overhead ratio (memrl / direct openai SDK): {sdk_ratio:.2f}x   "
        f"(range {min(sdk_ratios):.2f}-{max(sdk_ratios):.2f})"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in load0)} at start, {load1[0]:.2f} at end")
    if not (args.smoke or args.no_save):
        save(ratio, load0, sdk=sdk_ratio)
        print(f"saved to {RESULTS}")


if __name__ == "__main__":
    main()
