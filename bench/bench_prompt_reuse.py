"""Prompt reuse on the embedded server: lessons in a shared order or ranked per item, and the RAM cache.

Memory goes in the system prompt, before the question, so the system text and the lessons can be a prefix
every request shares; llama.cpp keeps the last request's tokens and reuses their common prefix with the
next. Two things decide how much of it is shared:

- the lessons' order: memrl picks the lessons for each item (`diversity.injection: mmr`) and, since
  da09596, shows the chosen ones in library order, so every item whose lessons all fit the budget gets the
  same block; before, they were shown ranked by relevance to each item, and two items' blocks parted after
  the first lesson or two (the `ranked` scenario keeps that order, for the comparison);
- the RAM cache (`model.prompt_cache_mb`, the server's `--cache`): saved states looked up by longest
  common prefix, which can add the part the previous request did not share (an item's own question and
  earlier turns), at the cost of saving the state, logits included, after every request.

Two servers of the same model run side by side, one with the cache. Each repeat sends the same requests
to both, alternating which goes first, in three scenarios:

    eval         memrl's evaluation (`evaluate_items`) of N items x k samples, memory built per item by
                 `memrl.inject.build_memory` (memrl's default: MMR over MiniLM, shown in library
                 order), at memrl's concurrency for local models (2); both servers
    ranked       the same lessons ranked by relevance to each item (memrl's order before da09596); the
                 server without the cache
    interleaved  two items' multi-turn conversations (as two tool loops) advanced in lockstep, A B A B…:
                 the previous request is always the other item's, the case the cache is for; both servers

Every repeat starts its system text with its own tag, so nothing carries over between repeats. Reported:
wall time, prompt tokens evaluated and reused (from the server log, as `RunResult.prompt_reuse` counts
them), saved states loaded, the servers' peak RSS, ratios (median over repeats, with their range) and the
load average. A full run merges `prompt_reuse_share` (memrl's defaults: library order, no cache),
`prompt_reuse_share_ranked`, `prompt_order_eval_ratio` (library order / ranked wall time) and
`prompt_cache_eval_ratio`, `prompt_cache_interleaved_ratio` (cache on / off) into
bench/results/performance.json.

    python bench/bench_prompt_reuse.py                 # 6 items x 2 samples, 25 lessons, 3 repeats
    python bench/bench_prompt_reuse.py --threads 1     # leave a core to others
    python bench/bench_prompt_reuse.py --smoke         # 2 items x 1, 6 lessons, 1 repeat (CI), saves nothing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.performance import RESULTS, save_figures  # noqa: E402
from memrl.inject import LessonVectors, build_memory  # noqa: E402
from memrl.llm.base import Request  # noqa: E402
from memrl.llm.litellm_adapter import LiteLLMClient  # noqa: E402
from memrl.llm.local import ALIAS, LocalServer, resolve_gguf  # noqa: E402
from memrl.llm.local_log import PromptReuse, ReuseMeter  # noqa: E402
from memrl.llm.managed import ManagedLLM  # noqa: E402
from memrl.memory.embed import make_embedder  # noqa: E402
from memrl.memory.records import LessonRecord  # noqa: E402
from memrl.runner import open_context  # noqa: E402
from memrl.spec import DiversitySpec, spec_from_mapping  # noqa: E402
from memrl.tokens import approx_tokens  # noqa: E402
from memrl.types import Item, Message  # noqa: E402

SETTINGS = {"off": 0, "on": 128}  # prompt_cache_mb; 128 MB of llama.cpp state is ~4 saved states here

#: Lessons of the kind TF-GRPO learns on word problems (~35 tokens each).
LESSONS = [
    "When a problem gives a price per item and a count, multiply them before applying any discount.",
    "A discount of p percent leaves (100 - p) percent of the price; compute the remaining price directly.",
    "For ages, write each person's age now as an expression in one unknown before using 'years ago'.",
    "When quantities are given in different units (minutes and hours, cents and dollars), convert first.",
    "Speed times time gives distance; if two objects move toward each other, add their speeds.",
    "For 'how many more' questions, subtract the smaller amount from the larger, not the other way round.",
    "When a total is shared in a ratio a:b, divide the total by a + b to get one part.",
    "Averages: the sum equals the average times the count; use it to find a missing value.",
    "Read the last sentence twice: answer exactly what it asks (a count, a cost, a difference, a rate).",
    "When something happens every day for a week, multiply by 7; check whether weekends are excluded.",
    "Percent increase is computed on the original amount, not on the new one.",
    "For areas of rectangles multiply length by width; for perimeters add all four sides.",
    "If a problem lists several purchases, add their costs one line at a time and keep a running total.",
    "Half of a half is a quarter: apply successive fractions to what is left, not to the original.",
    "When items are packed in boxes, divide and round up if a partly filled box still counts.",
    "Check units in the final answer: a question about money wants dollars and cents, not items.",
    "For work problems, add rates (jobs per hour), not times, when people work together.",
    "When a number is 'three times as many as', multiply the reference amount by three.",
    "Time on a clock: convert to minutes since midnight, subtract, and convert back to hours and minutes.",
    "If a problem gives a remainder after spending, add the spending back to find the starting amount.",
    "Interest per year on a simple loan is the principal times the rate; multiply by the years.",
    "When the question asks for a total over people, multiply the per-person amount by the head count.",
    "Large sums: add the tens and the ones separately, then combine, and check with a rough estimate.",
    "A dozen is 12, a score is 20, a week has 7 days and a year 52 weeks: substitute before computing.",
    "Before answering, substitute the result back into the problem's statements to check each one.",
]
QUESTIONS = [
    "A shop sells pencils at $0.40 each. Tom buys 15 pencils with a 10% discount. How much does he pay?",
    "Mia is 4 years older than twice Leo's age. Leo is 9. How old was Mia 5 years ago?",
    "Two trains 300 km apart move toward each other at 70 km/h and 80 km/h. After how many hours do they meet?",
    "A garden is 12 m long and 7 m wide. How many metres of fence go around it?",
    "Sam saves $6 every weekday for 3 weeks. How much does he save?",
    "Ann and Ben share 84 stickers in the ratio 3:4. How many does Ben get?",
    "The average of four numbers is 15. Three of them are 10, 12 and 20. What is the fourth?",
    "A tank holds 240 litres. It is half full, then a quarter of what is left is used. How much remains?",
]


def library(n: int) -> list[LessonRecord]:
    return [LessonRecord(id=f"L{i}", text=LESSONS[i % len(LESSONS)]) for i in range(n)]


def memory_for(lib: list[LessonRecord], order: str, vectors: LessonVectors) -> Any:
    """The memory block for an item: as evaluation and `MemoryPolicy` build it (`library`), or with the
    same lessons ranked by relevance to the item (`ranked`, memrl's order before da09596)."""

    def block(it: Any) -> str:
        lessons = lib
        if order == "ranked":
            rel = vectors.of([x.text for x in lib]) @ vectors.of([it.question])[0]
            lessons = [lib[i] for i in sorted(range(len(lib)), key=lambda i: -float(rel[i]))]
        div = (
            DiversitySpec(injection="all") if order == "ranked" else DiversitySpec()
        )  # "all" keeps the order given
        return build_memory(it.question, lessons, [], diversity=div, vectors=vectors, budget=2000).text

    return block


async def eval_run(srv: LocalServer, tmp: Path, tag: str, args: argparse.Namespace, memory: Any) -> float:
    """memrl's evaluation of `args.items` items, k samples each, with per-item memory; wall seconds."""
    data = tmp / "items.jsonl"
    rows = [
        {"id": f"q{i}", "question": QUESTIONS[i % len(QUESTIONS)], "answer": "0"}
        for i in range(args.items + 1)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = spec_from_mapping(
        {
            "name": "prompt-reuse",
            "algorithm": "evaluate",
            "model": {"name": "openai/local", "api_base": srv.api_base, "max_concurrency": 2},
            "data": {"source": str(data), "test_size": args.items, "seed": 0},
            "verifier": {"kind": "math"},
            "prompt": {"system": f"Session {tag}. You are a careful problem solver. End with the number."},
            "eval": {"k": args.k, "max_tokens": 24, "temperature": 0.3},
            "cache": {"enabled": False},
            "run": {"dir": str(tmp / "runs")},
        },  # fmt: skip
        base_dir=tmp,
    )
    client = LiteLLMClient(f"openai/{ALIAS}", api_base=srv.api_base, local=True, timeout_s=600)
    ctx = open_context(spec, tmp / "run", client=client)
    from memrl.algos.evaluate import evaluate_items

    t0 = time.perf_counter()
    await evaluate_items(ctx.llm, ctx.verifier, ctx.split.test, prompt=spec.prompt, cfg=spec.eval, run=ctx.run,
                         memory_for=memory)  # fmt: skip
    return time.perf_counter() - t0


async def interleaved(srv: LocalServer, system: str, turns: int) -> float:
    """Two conversations advanced in lockstep: turn t of item A, then of item B, both in flight at once."""
    llm = ManagedLLM(LiteLLMClient(f"openai/{ALIAS}", api_base=srv.api_base, local=True), max_concurrency=2)
    convs = [[Message.system(system), Message.user(q)] for q in QUESTIONS[:2]]
    t0 = time.perf_counter()
    for t in range(turns):
        reqs = [Request.of(c, temperature=0.0, max_tokens=32) for c in convs]
        outs = await asyncio.gather(*(llm.complete(r) for r in reqs))
        for c, out in zip(convs, outs, strict=True):
            c += [Message.assistant(out[0].text), Message.user(f"Check step {t + 1} and go on.")]
    return time.perf_counter() - t0


def timed(srv: LocalServer, run: Any) -> tuple[float, PromptReuse]:
    meter = ReuseMeter([srv])
    wall = asyncio.run(run)
    return wall, meter.read() or PromptReuse()


def measure(srv: LocalServer, name: str, i: int, args: argparse.Namespace, mem: dict[str, Any]) -> dict:
    """One repeat on one server: (wall seconds, prompt reuse) by scenario."""
    out: dict[str, Any] = {}
    tag = f"r{i}"
    plan = [("eval", "library"), ("ranked", "ranked")][: 2 if name == "off" else 1]
    for scen, injection in plan[:: -1 if i % 2 else 1]:
        with tempfile.TemporaryDirectory() as d:
            out[scen] = timed(srv, eval_run(srv, Path(d), f"{tag}{scen}", args, mem[injection]))
    system = f"Session {tag}i. You are a careful problem solver.\n\n" + mem["library"](
        Item(id="x", question="")
    )
    out["inter"] = timed(srv, interleaved(srv, system, args.turns))
    return out


def save(figures: dict[str, float], load: tuple[float, ...], path: Path = RESULTS) -> None:
    """Merge these figures into the results file, keeping every other key."""
    save_figures("bench_prompt_reuse.py", figures, load, path)


def peak_rss_mb(srv: LocalServer) -> float:
    """The server process's peak resident memory (Linux), 0 where unknown."""
    try:
        status = Path(f"/proc/{srv.proc.pid}/status").read_text() if srv.proc else ""
    except OSError:
        return 0.0
    kb = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return kb[0] / 1024 if kb else 0.0


def total(rows: list[dict[str, Any]], scen: str) -> PromptReuse:
    return sum((r[scen][1] for r in rows), PromptReuse())


def ratio(num: list[dict[str, Any]], den: list[dict[str, Any]], a: str, b: str) -> tuple[float, float, float]:
    """Median of the per-repeat wall-time ratios num[a] / den[b], and their range."""
    rs = [x[a][0] / y[b][0] for x, y in zip(num, den, strict=True)]
    return statistics.median(rs), min(rs), max(rs)


def _row(label: str, rows: list[dict[str, Any]], scen: str) -> str:
    r, n = total(rows, scen), len(rows)
    wall = statistics.median(x[scen][0] for x in rows)
    return (
        f"  {label:30} {wall:7.2f} s  evaluated {r.evaluated_tokens // n:6,}  reused {r.reused_tokens // n:6,}"
        f"  share {r.share:6.1%}  state loads {r.state_loads // n}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--items", type=int, default=6)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--lessons", type=int, default=25, help="lessons in the library (~35 tokens each)")
    ap.add_argument("--turns", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    ap.add_argument("--json", type=Path, help="also write the figures and token counts here")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.items, args.k, args.lessons, args.turns = 1, 2, 1, 6, 2
    lib = library(args.lessons)
    vectors = LessonVectors(make_embedder(DiversitySpec().embedder))
    mem = {order: memory_for(lib, order, vectors) for order in ("library", "ranked")}
    block = mem["library"](Item(id="x", question=""))
    load0 = os.getloadavg()
    gguf = resolve_gguf("local")
    servers = {n: LocalServer(gguf, n_threads=args.threads, prompt_cache_mb=mb) for n, mb in SETTINGS.items()}
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in SETTINGS}
    try:
        for srv in servers.values():
            srv.start()
            asyncio.run(interleaved(srv, "Warm up.", 1))  # first-use costs, unmeasured
        for i in range(args.repeats):
            for name in list(SETTINGS) if i % 2 == 0 else list(SETTINGS)[::-1]:
                rows[name].append(measure(servers[name], name, i, args, mem))
        rss = {n: peak_rss_mb(s) for n, s in servers.items()}
    finally:
        for srv in servers.values():
            srv.stop()
    load1 = os.getloadavg()
    off, on = rows["off"], rows["on"]
    order, cache_eval, cache_inter = (
        ratio(off, off, "eval", "ranked"),
        ratio(on, off, "eval", "eval"),
        ratio(on, off, "inter", "inter"),
    )
    print(
        f"model {gguf.name}, {args.threads} threads, {args.lessons} lessons (~{approx_tokens(block)} tokens in "
        f"library order), {args.repeats} alternating repeats; medians, tokens per repeat"
    )
    print(f"evaluation of {args.items} items x {args.k} samples, 2 requests in flight:")
    print(_row("lessons ranked per item (before da09596)", off, "ranked"))
    print(_row("library order (memrl's default)", off, "eval"))
    print(_row("library order + RAM cache", on, "eval"))
    print(f"two conversations x {args.turns} turns in lockstep, library order:")
    print(_row("no cache", off, "inter"))
    print(_row("RAM cache", on, "inter"))
    print(f"peak RSS of the server: {rss['off']:.0f} MB without the cache, {rss['on']:.0f} MB with it")
    for label, (m, lo, hi) in (
        ("eval wall, library order / ranked", order),
        ("eval wall, RAM cache on / off", cache_eval),
        ("lockstep wall, RAM cache on / off", cache_inter),
    ):
        print(f"{label:36} {m:.2f}x  (range {lo:.2f}-{hi:.2f})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in load0)} at start, {load1[0]:.2f} at end")
    figures = {
        "prompt_reuse_share": total(off, "eval").share,
        "prompt_reuse_share_ranked": total(off, "ranked").share,
        "prompt_order_eval_ratio": order[0],
        "prompt_cache_eval_ratio": cache_eval[0],
        "prompt_cache_interleaved_ratio": cache_inter[0],
    }
    if args.json:
        counts = {f"{n}/{s}": total(rows[n], s).model_dump() for n in SETTINGS for s in rows[n][0]}
        args.json.write_text(json.dumps({"figures": figures, "reuse": counts, "rss_mb": rss}, indent=2))
    if not (args.smoke or args.no_save):
        save(figures, load0)
        print(f"saved to {RESULTS}")


if __name__ == "__main__":
    main()
