"""Group sampling on a local model: llama-cpp-python's server against llama.cpp's `llama-server -np 4`.

Both run side by side (started once, same model, same threads) and are reached through memrl's model layer
as `build_llm` sets it up (ManagedLLM over litellm, no response cache): llama-cpp-python's server gets 2
requests in flight, one sample each; llama-server gets up to 4 samples in flight, a group's samples in one
request (`n`: the prompt is evaluated once). A third column sends llama-server one request per sample (4 in
flight), for comparison. Two workloads:
- rollouts: TF-GRPO groups, one prompt and G = 4 samples each (`complete(n=4)`, as `rollout_group` asks),
  one group after another;
- a sampled evaluation: `evaluate_items` over `--items` gsm_symbolic items × `--k` samples.
Each repeat runs every column on the same fresh items (new items every repeat, so no server finds the
prompts in its cache from the repeat before), in alternating order; repeat 0 warms up and is not counted.
The figure for each workload is the median over repeats of the ratio of generated tokens per second
(column / llama-cpp-python); `group_sampling_ratio` is llama-server's smaller one (issue 18's goal:
≥ 1.4×). The load average is printed with every repeat. A full run on the 1.5B model with memrl's
threads merges `group_sampling_ratio` and the per-workload `group_sampling_{rollouts,eval}_ratio[_per_sample]`
into bench/results/performance.json.

Threads: under CPU contention (another process busy on the same 2 cores) both servers at 2 threads
stalled for tens of seconds at a time, llama-server worst (2 tok/s); `--threads 1` measures that case.

    python bench/bench_group_sampling.py --model local:qwen2.5-coder-1.5b --repeats 3
    python bench/bench_group_sampling.py --model local --repeats 3 --no-save     # SmolLM2-135M
    MEMRL_LLAMA_SERVER=/path/to/llama-server python bench/bench_group_sampling.py ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.performance import RESULTS, save_figures  # noqa: E402
from memrl.algos.evaluate import evaluate_items  # noqa: E402
from memrl.inject import policy_messages  # noqa: E402
from memrl.llm import llama_server as ls  # noqa: E402
from memrl.llm.base import Request  # noqa: E402
from memrl.llm.litellm_adapter import LiteLLMClient  # noqa: E402
from memrl.llm.local import ALIAS, LocalServer, resolve_gguf  # noqa: E402
from memrl.llm.managed import ManagedLLM  # noqa: E402
from memrl.runs import RunDir  # noqa: E402
from memrl.spec_sections import EvalSpec, PromptSpec  # noqa: E402
from memrl.tasks.rgym import reasoning_gym_items  # noqa: E402
from memrl.tasks.verifiers import ReasoningGymVerifier  # noqa: E402
from memrl.types import Item  # noqa: E402

KEY = "group_sampling_ratio"
PROMPT = PromptSpec(system="Solve the problem. Think step by step, then give the final answer as \\boxed{N}.")
G = 4
BASE, NEW, PER = "llama-cpp-python", "llama-server", "llama-server/1"


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def start(model: str, n_ctx: int, binary: Path | None, threads: int | None) -> tuple[ManagedLLM, LocalServer]:
    """memrl's LLM for the model on one server kind (llama-server when `binary`), and the server: what
    `build_llm` makes (its concurrency and samples per request), with the server's threads set."""
    path = resolve_gguf(model)
    srv = (
        ls.LlamaServer(path, binary=binary, n_ctx=n_ctx, n_threads=threads)
        if binary
        else LocalServer(path, n_ctx=n_ctx, n_threads=threads)
    ).start()
    client = LiteLLMClient(
        f"openai/{ALIAS}", api_base=srv.api_base, timeout_s=1800, local=True, max_n=srv.max_n
    )
    return ManagedLLM(client, name=model, max_concurrency=min(8, srv.concurrency)), srv


def per_sample(srv: LocalServer) -> ManagedLLM:
    """llama-server reached with one request per sample, `concurrency` in flight."""
    client = LiteLLMClient(f"openai/{ALIAS}", api_base=srv.api_base, timeout_s=1800, local=True)
    return ManagedLLM(client, name="per-sample", max_concurrency=srv.concurrency)


async def rollouts(
    llm: ManagedLLM, items: list[Item], temperature: float, max_tokens: int
) -> tuple[int, float]:
    """TF-GRPO groups of G samples, one group after another: (generated tokens, seconds)."""
    t0, tokens = time.perf_counter(), 0
    for it in items:
        req = Request.of(policy_messages(PROMPT, it, ""), temperature=temperature, max_tokens=max_tokens)
        out = await llm.complete(req, n=G, phase="rollout", salt=f"rollout:{it.id}")
        tokens += sum(c.usage.completion_tokens for c in out)
    return tokens, time.perf_counter() - t0


async def evaluation(
    llm: ManagedLLM, items: list[Item], k: int, temperature: float, max_tokens: int, tmp: Path
) -> tuple[int, float]:
    """A sampled evaluation through `evaluate_items`: (generated tokens, seconds)."""
    before = llm.ledger.total.completion_tokens
    run = RunDir(tempfile.mkdtemp(dir=tmp))
    cfg = EvalSpec(k=k, temperature=temperature, max_tokens=max_tokens)
    res = await evaluate_items(
        llm, ReasoningGymVerifier(), items, prompt=PROMPT, cfg=cfg, run=run, label="eval"
    )
    return llm.ledger.total.completion_tokens - before, res.seconds


def save(figures: dict[str, float], load_avg: tuple[float, ...], path: Path = RESULTS) -> None:
    """Merge these figures (key → value) into the results file, keeping every other key."""
    save_figures("bench_group_sampling.py", figures, load_avg, path)


async def main_async(args: argparse.Namespace) -> None:
    binary = ls.find_llama_server("auto")
    if binary is None:
        sys.exit(
            "no llama-server binary found: build it (memrl.llm.llama_server) or set MEMRL_LLAMA_SERVER=/path/to/it"
        )
    per = args.groups + args.items
    items = reasoning_gym_items("gsm_symbolic", {}, (args.repeats + 1) * per, args.seed, "gsm_symbolic")
    servers: dict[str, ManagedLLM] = {}
    procs = []
    for name, b in ((BASE, None), (NEW, binary)):
        servers[name], srv = start(args.model, args.n_ctx, b, args.threads)
        procs.append(srv)
        print(f"{name}: started in {srv.startup_s or 0:.1f}s, {srv.n_threads} threads", flush=True)
    servers[PER] = per_sample(srv)
    load0 = load()
    print(f"load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; llama-server: {binary}")
    work = ("rollouts", "eval")
    ratios: dict[tuple[str, str], list[float]] = {(n, w): [] for n in (NEW, PER) for w in work}
    tmp = Path(tempfile.mkdtemp(prefix="bench-group-"))
    for r in range(args.repeats + 1):  # repeat 0 warms the servers up and is not counted
        batch = items[r * per : (r + 1) * per]
        groups, evals = batch[: args.groups], batch[args.groups :]
        order = list(servers) if r % 2 else list(reversed(servers))
        rate: dict[tuple[str, str], float] = {}
        for name in order:
            llm = servers[name]
            tok, s = await rollouts(llm, groups, args.temperature, args.max_tokens)
            rate[name, "rollouts"] = tok / s
            print(
                f"  repeat {r} {name:16s} rollouts {args.groups}x{G}: {tok:5d} tok {s:6.1f}s {tok / s:6.1f} tok/s"
            )
            tok, s = await evaluation(llm, evals, args.k, args.temperature, args.max_tokens, tmp)
            rate[name, "eval"] = tok / s
            print(
                f"  repeat {r} {name:16s} eval {args.items}x{args.k}:     {tok:5d} tok {s:6.1f}s {tok / s:6.1f} tok/s"
            )
        la = load()
        now = {key: rate[key] / rate[BASE, key[1]] for key in ratios}
        line = ", ".join(f"{n} {w} {x:.2f}x" for (n, w), x in now.items())
        note = " (warm-up, not counted)" if r == 0 else ""
        print(f"repeat {r}{note}: {line}; load {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}", flush=True)
        if r:
            for key, x in now.items():
                ratios[key].append(x)
    med = {key: statistics.median(v) for key, v in ratios.items()}
    load1 = load()
    print(f"median ratio to {BASE} (generated tokens/s), over {args.repeats} repeats:")
    for (n, w), v in ratios.items():
        print(f"  {n:16s} {w:8s} {med[n, w]:.2f}x  ({' '.join(f'{x:.2f}' for x in v)})")
    print(f"load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    value = min(med[NEW, w] for w in work)
    print(f"{KEY} (llama-server as memrl uses it, the smaller of rollouts and eval): {value:.2f}x")
    for srv in procs:
        srv.stop()
    if args.save and args.model == "local:qwen2.5-coder-1.5b" and args.threads is None:
        save(figures(med), load1)
        print(f"saved {KEY} = {value:.3f} to {RESULTS}")


def figures(med: dict[tuple[str, str], float]) -> dict[str, float]:
    """The keys a run writes: the goal's figure, each workload's, and llama-server one request per sample."""
    out = {KEY: min(med[NEW, w] for w in ("rollouts", "eval"))}
    for w in ("rollouts", "eval"):
        out[f"group_sampling_{w}_ratio"] = med[NEW, w]
        out[f"group_sampling_{w}_ratio_per_sample"] = med[PER, w]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="local:qwen2.5-coder-1.5b")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--groups", type=int, default=2, help="rollout groups (of 4) per repeat")
    ap.add_argument("--items", type=int, default=4, help="evaluation items per repeat")
    ap.add_argument("--k", type=int, default=2, help="evaluation samples per item")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--threads", type=int, default=None, help="server threads (default: memrl's, all cores)")
    ap.add_argument("--no-save", dest="save", action="store_false", help=f"do not write {RESULTS.name}")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
