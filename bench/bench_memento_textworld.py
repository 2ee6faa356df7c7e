"""Memento on held-out TextWorld cooking games with the local model: case memory off vs similarity vs online Q.

    python bench/bench_memento_textworld.py            # 8 train games, 16 held-out test games
    python bench/bench_memento_textworld.py --smoke    # 2 + 2 games, a minute or two

Every condition plays the same held-out games (test foods, never seen in training) with the same seeds and
salts, through `tasks/textworld-cooking.yaml` with overrides. `off` reads no memory (and does not train);
`similarity` and `q` first play the training games, writing a case after each (and, for `q`, updating Q),
then play the test games reading case memory only. Subtask and tool memory are off in all three, so the
comparison isolates case memory. Prints success rate (Wilson 95 % interval), mean reward (score / max score,
1 when won; normal 95 % interval) and the paired difference to `off` over the same games.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from memrl.algos.memento import wilson  # noqa: E402
from memrl.llm.litellm_adapter import LiteLLMClient  # noqa: E402
from memrl.llm.local import ALIAS, LocalServer, resolve_gguf  # noqa: E402
from memrl.metrics import mean_ci  # noqa: E402
from memrl.runner import run_task  # noqa: E402
from memrl.runs import RunDir  # noqa: E402
from memrl.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "tasks" / "textworld-cooking.yaml"
CONDITIONS = ("off", "similarity", "q")


def paired(diffs: list[float]) -> tuple[float, float, float]:
    n = len(diffs)
    m = sum(diffs) / n
    sd = math.sqrt(sum((d - m) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    return m, m - 1.96 * sd / math.sqrt(n), m + 1.96 * sd / math.sqrt(n)


def run_condition(mode: str, args: argparse.Namespace, client: LiteLLMClient | None) -> list[dict]:
    overrides = [
        f"data.params.train={args.train}", f"data.params.test={args.test}", f"data.seed={args.seed}",
        f"memento.cases.mode={mode}", "memento.subtask_memory=false", "memento.tool_memory=false",
        f"memento.train_episodes={0 if mode == 'off' else args.train}",
        f"run.dir={args.out}", f"run.name=cases-{mode}", f"run.seed={args.seed}",
    ]  # fmt: skip
    if args.cache_dir:
        overrides.append(f"data.params.cache_dir={args.cache_dir}")
    if args.smoke:
        overrides += ["memento.max_steps=4", "memento.max_cycles=1"]
    if client is None:  # a hosted model, reached through the task file's model section
        overrides.append(f"model={args.model}")
    spec = load_spec(TASK, overrides)
    t0 = time.perf_counter()
    res = run_task(spec, resume=(Path(args.out) / f"cases-{mode}" / "spec.yaml").exists(), client=client)
    rows = [m for m in RunDir(res.run_dir).read_jsonl("metrics.jsonl")]
    print(f"[{mode}] {res.status} in {time.perf_counter() - t0:.0f}s: {json.dumps(res.results.get('eval', {}))}",
          flush=True)  # fmt: skip
    return rows


def table(results: dict[str, list[dict]]) -> tuple[str, dict]:
    base = {r["item"]: r for r in results["off"] if r["phase"] == "eval"} if "off" in results else {}
    lines = ["| case memory | train games | test games | success rate [95% CI] | mean reward [95% CI] | "
             "Δ reward vs off, paired [95% CI] | Δ success vs off | mean steps | mean tokens/episode |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    summary = {}
    for mode, rows in results.items():
        ev = [r for r in rows if r["phase"] == "eval"]
        tr = [r for r in rows if r["phase"] == "train"]
        wins = sum(r["success"] for r in ev)
        lo, hi = wilson(wins, len(ev))
        m, mlo, mhi = mean_ci([r["reward"] for r in ev])
        s = {"train_games": len(tr), "test_games": len(ev), "success_rate": wins / len(ev), "success_ci": [lo, hi],
             "mean_reward": m, "reward_ci": [mlo, mhi], "mean_steps": sum(r["steps"] for r in ev) / len(ev),
             "mean_tokens": sum(r["tokens"] for r in ev) / len(ev),
             "train_success": sum(r["success"] for r in tr) / len(tr) if tr else None}  # fmt: skip
        dr = ds = "—"
        if base and mode != "off":
            d = paired([r["reward"] - base[r["item"]]["reward"] for r in ev])
            dw = paired([float(r["success"]) - float(base[r["item"]]["success"]) for r in ev])
            s["paired_reward_diff"], s["paired_success_diff"] = d, dw
            dr = f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
            ds = f"{dw[0]:+.3f} [{dw[1]:+.3f}, {dw[2]:+.3f}]"
        # per episode, so the table can be recomputed from the committed results
        s["episodes"] = [
            {k: r[k] for k in ("item", "phase", "reward", "success", "steps", "tokens")} for r in rows
        ]
        summary[mode] = s
        lines.append(f"| {mode} | {len(tr)} | {len(ev)} | {wins}/{len(ev)} = {s['success_rate']:.3f} [{lo:.3f}, {hi:.3f}] | "
                     f"{m:.3f} [{mlo:.3f}, {mhi:.3f}] | {dr} | {ds} | {s['mean_steps']:.1f} | {s['mean_tokens']:.0f} |")  # fmt: skip
    return "\n".join(lines), summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="2 train + 2 test games, short episodes")
    ap.add_argument("--train", type=int, default=8)
    ap.add_argument("--test", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (1 behaves best on a busy machine)"
    )
    ap.add_argument("--model", default="local", help="local, local:/path/model.gguf, or a litellm model id")
    ap.add_argument("--cache-dir", default=None, help="where generated games are kept")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-memento-textworld"))
    args = ap.parse_args()
    if args.smoke:
        args.train, args.test = 2, 2
        args.out = args.out + "-smoke"
    local = args.model.startswith("local")
    server = (
        LocalServer(resolve_gguf(args.model), n_ctx=2048, n_threads=args.threads).start() if local else None
    )
    try:
        client = None
        if server is not None:
            client = LiteLLMClient(f"openai/{ALIAS}", api_base=server.api_base, timeout_s=600, local=True)
        t0 = time.perf_counter()
        results = {mode: run_condition(mode, args, client) for mode in args.conditions.split(",")}
        text, summary = table(results)
        cmd = "python bench/bench_memento_textworld.py " + " ".join(sys.argv[1:])
        where = f"llama.cpp, {args.threads} thread(s)" if server else "hosted"
        report = f"{text}\n\nmodel: {args.model} ({where}); command: `{cmd}`; " \
                 f"wall time {time.perf_counter() - t0:.0f}s"  # fmt: skip
        print(report)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps(summary, indent=2))
        (Path(args.out) / "results.md").write_text(report + "\n")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
