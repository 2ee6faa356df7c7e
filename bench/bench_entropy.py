"""Throughput of memrl's teacher-forced entropy path against raw llama-cpp-python eval of the same tokens.

Run:  python bench/bench_entropy.py            (4 groups × 4 completions of ≤ 64 tokens, 3 repeats)
      python bench/bench_entropy.py --smoke    (2 groups × 2 completions of ≤ 24 tokens, 2 repeats)

A full run (not --smoke, default model) merges `entropy_ratio` (memrl score_group / raw eval throughput) into
bench/results/performance.json, with the load average it ran under.

The completions are sampled from the same model first (not timed). Then, in the same process and on the same
``Llama`` object, each path scores every group from a cleared context (so no path profits from a prompt left
by another), the paths interleaved within each repeat:

- raw eval        ``llm.eval(prompt)`` once per group, then per completion ``llm.n_tokens = len(prompt)`` and
                  ``llm.eval(completion)``: the same llama.cpp work memrl does, with nothing computed from it;
- memrl (ids)     ``LlamaEntropyScorer.score_tokens``: the above plus entropies, log-probs and token texts;
- memrl (text)    ``LlamaEntropyScorer.score_group``: the above plus chat template and tokenization;
- raw, no reuse   ``llm.eval(prompt + completion)`` per completion: what scoring costs without prompt reuse.

Throughput is completion tokens scored per second (the same count for every path). Paths are interleaved
group by group in a rotating order; a path's time is the sum over groups of its fastest repeat (this machine
is shared, and the minimum is the least disturbed estimate); the mean over repeats is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memrl.entropy.llama import LlamaEntropyScorer  # noqa: E402
from memrl.entropy.scoring import group_entropy  # noqa: E402
from memrl.types import Message  # noqa: E402

SYSTEM = "You are a careful assistant. Think step by step, then give the final answer on its own line."
QUESTIONS = [
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "A train travels 60 km in one hour. How far does it go in 3 hours?",
    "What is 12 times 7?",
    "Sara reads 15 pages a day. How many pages does she read in a week?",
    "A box holds 24 pencils. How many pencils are in 5 boxes?",
    "If a shirt costs 20 dollars and is 25 percent off, what is the price?",
    "What is the sum of the first ten positive integers?",
    "Ann is twice as old as Ben, who is 9. How old is Ann?",
]


def sample_groups(
    scorer: LlamaEntropyScorer, n_groups: int, group_size: int, max_tokens: int
) -> list[tuple[list[Message], list[str]]]:
    groups = []
    for g in range(n_groups):
        prompt = [Message.system(SYSTEM), Message.user(QUESTIONS[g % len(QUESTIONS)])]
        text = scorer.format_prompt(prompt)
        completions = []
        for i in range(group_size):
            out = scorer.llm.create_completion(
                text, max_tokens=max_tokens, temperature=1.0, top_p=0.95, seed=1000 * g + i
            )
            completions.append(out["choices"][0]["text"] or "ok")
        groups.append((prompt, completions))
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="GGUF path (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--smoke", action="store_true", help="a fast version: 2 groups × 2 × 24 tokens, 2 repeats"
    )
    args = ap.parse_args()
    if args.smoke:
        args.groups, args.group_size, args.max_tokens, args.repeats = 2, 2, 24, 2

    t0 = time.perf_counter()
    load0 = os.getloadavg()
    scorer = LlamaEntropyScorer(args.model, n_ctx=args.n_ctx, n_threads=args.threads)
    llm = scorer.llm
    print(
        f"model loaded in {time.perf_counter() - t0:.2f} s, vocab {scorer.n_vocab}, threads {llm.n_threads} (batch {llm.n_threads_batch})"
    )
    t0 = time.perf_counter()
    groups = sample_groups(scorer, args.groups, args.group_size, args.max_tokens)
    ids = [(scorer.tokenize_prompt(p), [scorer.tokenize_completion(c) for c in cs]) for p, cs in groups]
    n_scored = sum(len(c) for _, cs in ids for c in cs)
    n_prompt = sum(len(p) for p, _ in ids)
    print(
        f"sampled {args.groups} groups × {args.group_size} completions in {time.perf_counter() - t0:.1f} s: "
        f"{n_scored} completion tokens, {n_prompt} prompt tokens (one prompt eval per group)"
    )

    # Each path scores one group (prompt + its G completions) from a cleared context.
    def raw_eval(g: int) -> None:
        p, cs = ids[g]
        llm.reset()
        llm.eval(p)
        for c in cs:
            llm.n_tokens = len(p)
            llm.eval(c)

    def raw_no_reuse(g: int) -> None:
        p, cs = ids[g]
        for c in cs:
            llm.reset()
            llm.eval(p + c)

    def memrl_ids(g: int) -> None:
        llm.reset()
        scorer.score_tokens(*ids[g])

    def memrl_text(g: int) -> None:
        llm.reset()
        scorer.score_group(*groups[g])

    paths: dict[str, Callable[[int], None]] = {
        "raw eval (prompt once)": raw_eval,
        "memrl score_tokens": memrl_ids,
        "memrl score_group (text)": memrl_text,
        "raw eval, no prompt reuse": raw_no_reuse,
    }
    names = list(paths)
    # best[name][g]: the fastest of the repeats for that path and group. The paths are interleaved group by
    # group, in a rotating order, so that a burst of load from other processes hits them alike, and the
    # minimum over repeats estimates the uncontended cost. Round 0 is an untimed warm-up: the first passes
    # after loading and sampling run several times slower (memory first touched, buffers sized).
    best: dict[str, list[float]] = {name: [float("inf")] * len(ids) for name in names}
    walls: dict[str, float] = dict.fromkeys(names, 0.0)
    for round_ in range(args.repeats + 1):
        for g in range(len(ids)):
            k = (round_ + g) % len(names)
            for name in names[k:] + names[:k]:
                t = time.perf_counter()
                paths[name](g)
                dt = time.perf_counter() - t
                if round_:
                    best[name][g] = min(best[name][g], dt)
                    walls[name] += dt / args.repeats
        label = "warm-up" if round_ == 0 else f"repeat {round_}/{args.repeats}"
        print(f"  {label} done at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    base = sum(best["raw eval (prompt once)"])
    print(f"\n{'path':28s} {'best s':>8s} {'tok/s':>8s} {'ratio vs raw':>13s} {'mean-run tok/s':>15s}")
    for name in names:
        t = sum(best[name])
        print(f"{name:28s} {t:8.3f} {n_scored / t:8.1f} {base / t:13.3f} {n_scored / walls[name]:15.1f}")
    ratio = base / sum(best["memrl score_group (text)"])
    load = tuple(max(a, b) for a, b in zip(load0, os.getloadavg(), strict=True))
    print(f"\nmemrl entropy path / raw llama-cpp-python eval throughput: {ratio:.3f} (load {load[0]:.2f})")
    if not args.smoke and args.model is None:
        from bench.performance import save_figures

        save_figures("bench_entropy.py", {"entropy_ratio": ratio}, load)
    mean_h = statistics.mean(group_entropy(scorer.score_group(p, cs)) for p, cs in groups)
    print(f"mean group entropy (seq-mean-token-mean): {mean_h:.3f} nats/token")


if __name__ == "__main__":
    main()
