"""Does memrl's memory make a local model better? One protocol, one model, side by side with GEPA and youtu-agent.

    python bench/efficacy.py                   # tasks/efficacy-gsm.yaml: Qwen2.5-Coder-1.5B, 40 held-out (~2 h, 2 cores)
    python bench/efficacy.py --smoke           # tasks/efficacy-smoke.yaml on the embedded SmolLM2 (CI, a few minutes)
    python bench/efficacy.py --only none,cases # some conditions; a re-run resumes (finished work is reused)

Protocol. The task file fixes the model, the data (a training split to learn from and a disjoint held-out split
to score), the prompt, greedy held-out answers and the learning budget (steps × batch × group rollouts).
Every condition learns from the same training items with the same number of task-model rollouts and is then
scored on the same held-out items by the same evaluator and verifier:

- `none`: the prompt alone.
- `cases`: TF-GRPO loop writing worked cases (the policy's own verified solutions), retrieved by similarity.
- `cases-q`: the same, retrieved by similarity plus a utility Q learned online from rollout rewards.
- `lessons`: Training-Free GRPO lessons (semantic advantage, library edits).
- `lessons+cases`: both, under one memory token budget.
- `gepa`: GEPA (PyPI `gepa`) optimises the system prompt with the same model as task and reflection model,
  at the same number of rollouts (`bench/peers/gepa_peer.py`).
- `youtu-tfgrpo`: youtu-agent's own Training-Free GRPO, where it is set up (`bench/peers/youtu_setup.sh`).

All conditions share one response cache, so identical requests are paid once: the held-out answers of `none`
are every memrl condition's epoch-0 evaluation, and the first learning step (empty memory) is common to them.
Wall times are therefore as measured in this run; tokens count every call, cached or not.

Written to the output folder: `results.json`, `table.md`, `efficacy.png`, one run directory per condition.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers.base import PeerContext, PeerResult  # noqa: E402
from memrl.algos.evaluate import evaluate_items  # noqa: E402
from memrl.llm.base import Request  # noqa: E402
from memrl.loop_thread import LoopThread  # noqa: E402
from memrl.metrics import mean_ci, paired_difference  # noqa: E402
from memrl.runner import RunContext, open_context, run_task  # noqa: E402
from memrl.runs import RunDir, atomic_write  # noqa: E402
from memrl.spec import PromptSpec, TaskSpec, load_spec  # noqa: E402
from memrl.types import Item, ItemResult, Message  # noqa: E402

T = TypeVar("T")

#: The agent with the sandboxed Python tool: a program's printed output is its answer, a failing one is shown
#: to it (2 turns at most: on 2 cores a third turn of the 1.5B model costs ~20 s an answer).
TOOL = ["act.max_turns=2"]
MEMRL = {
    "cases": ["tfgrpo.experiences=cases", "tfgrpo.cases.mode=similarity"],
    "cases-q": ["tfgrpo.experiences=cases", "tfgrpo.cases.mode=q", "tfgrpo.cases.exploration=epsilon",
                "tfgrpo.cases.epsilon=0.3"],
    "lessons": ["tfgrpo.experiences=lessons"],
    "lessons+cases": ["tfgrpo.experiences=both"],
    # with the sandboxed Python tool (`act:`), each memory kind alone, then all of them behind the no-harm gate
    "tool+skills": [*TOOL, "tfgrpo.experiences=none", "tfgrpo.skills.enabled=true"],
    "tool+lessons": [*TOOL, "tfgrpo.experiences=lessons"],
    "tool+cases": [*TOOL, "tfgrpo.experiences=cases", "tfgrpo.cases.mode=similarity"],
    "memrl": [*TOOL, "tfgrpo.experiences=both", "tfgrpo.skills.enabled=true", "tfgrpo.gate.enabled=true"],
}  # fmt: skip
#: Conditions that only answer (no learning): the prompt alone, and the same agent with the tool.
PLAIN = {"none": [], "tool": TOOL}
PEERS = ("gepa", "youtu-tfgrpo")
ORDER = ("none", "tool", "cases", "lessons+cases", "lessons", "cases-q", "tool+skills", "tool+lessons", "tool+cases",
         "memrl", "gepa", "youtu-tfgrpo")  # fmt: skip


def uses_tool(name: str) -> bool:
    """Whether a learning condition answers with the tool (and is paired against `tool` as well)."""
    return TOOL[0] in MEMRL.get(name, [])


BASE_LABEL = (
    "eval-epoch0"  # `none` answers under the label and salt the memrl conditions' epoch-0 evaluation uses
)


# ------------------------------------------------------------------------------------------------ statistics


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of b − a over the same items with a normal 95 % interval, wins/losses and McNemar's exact p."""
    return paired_difference(a, b).model_dump(exclude={"n_items"})


def per_item(run: RunDir, label: str, items: list[Item]) -> tuple[list[float], list[bool]]:
    rows = {r["item_id"]: ItemResult.model_validate(r) for r in run.read_jsonl(f"{label}.jsonl")}
    missing = [it.id for it in items if it.id not in rows]
    if missing:
        raise RuntimeError(
            f"{run.path}/{label}.jsonl lacks {len(missing)} held-out items (e.g. {missing[0]})"
        )
    acc = [rows[it.id].n_correct / len(rows[it.id].samples) for it in items]
    trunc = [any(c.truncated for c in rows[it.id].samples) for it in items]
    return acc, trunc


def learning_usage(run: RunDir, skip: tuple[str, ...] = ("eval",)) -> dict[str, int]:
    """Model calls and tokens spent learning, from the run's call journal. Calls replayed from the shared
    cache count with the tokens they cost when first made (`cached_calls` says how many were replays)."""
    calls = cached = tokens = 0
    for rec in run.read_jsonl("calls.jsonl"):
        if rec.get("phase") in skip:
            continue
        calls += 1
        cached += bool(rec.get("cached"))
        tokens += int(rec.get("prompt_tokens", 0)) + int(rec.get("completion_tokens", 0))
    return {"calls": calls, "cached_calls": cached, "tokens": tokens}


# ------------------------------------------------------------------------------------------------ conditions


def condition_spec(base: TaskSpec, task: Path, name: str, out: Path, extra: list[str]) -> TaskSpec:
    overrides = [f"cache.path={out / 'cache.sqlite'}", f"run.name={name}", *extra]
    return load_spec(task, overrides + MEMRL.get(name, PLAIN.get(name, [])))


def score_prompt(ctx: RunContext, system: str, template: str, label: str) -> dict[str, Any]:
    prompt = PromptSpec(system=system, template=template, memory_placement=ctx.spec.prompt.memory_placement)
    res = asyncio.run(evaluate_items(
        ctx.llm, ctx.verifier, ctx.split.test, prompt=prompt, cfg=ctx.spec.eval, run=ctx.run, label=label,
        act=ctx.spec.act, progress=ctx.progress,
    ))  # fmt: skip
    ctx.save_usage()
    return res.model_dump()


def run_none(spec: TaskSpec, folder: Path) -> dict[str, Any]:
    ctx = open_context(spec, folder)
    try:
        t0 = time.perf_counter()
        score_prompt(ctx, spec.prompt.system, spec.prompt.template, BASE_LABEL)
        return {"label": BASE_LABEL, "learn_seconds": 0.0, "eval_seconds": time.perf_counter() - t0,
                "rollouts": 0, **learning_usage(ctx.run)}  # fmt: skip
    finally:
        if ctx.llm.cache is not None:
            ctx.llm.cache.close()


def run_memrl(spec: TaskSpec, folder: Path) -> dict[str, Any]:
    res = run_task(spec, resume=True, run_dir=folder)
    if res.status != "finished":
        raise RuntimeError(f"{folder.name}: run ended with status {res.status}: {res.message}")
    run = RunDir(folder)
    metrics = list(run.read_jsonl("metrics.jsonl"))
    cfg = spec.tfgrpo
    assert cfg is not None
    last = f"eval-epoch{cfg.epochs}"
    return {
        "label": last,
        "learn_seconds": sum(m.get("step_seconds", 0.0) for m in metrics),
        "eval_seconds": res.results.get(last, {}).get("seconds", 0.0),
        "rollouts": sum(m["groups"] for m in metrics) * cfg.group_size,
        "lessons": res.results["learning"]["lessons"],
        "cases": res.results["learning"].get("cases"),
        "skills": res.results["learning"].get("skills"),
        **learning_usage(run),
    }


def run_peer(name: str, spec: TaskSpec, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    if name == "gepa":
        from bench.peers import gepa_peer as peer
    else:
        from bench.peers import youtu_peer as peer  # type: ignore[no-redef]
    ctx = open_context(spec, folder)
    loop = LoopThread()
    try:
        saved = ctx.run.file("peer-result.json")
        if saved.exists():
            result = PeerResult.model_validate_json(saved.read_text())
        else:
            from memrl.llm.local import ALIAS, shared_server

            api_base = spec.model.api_base or ""
            if spec.model.name.startswith("local"):
                api_base = shared_server(spec.model.name, n_ctx=spec.model.n_ctx).api_base

            def chat(
                messages: list[dict[str, str]], temperature: float, max_tokens: int
            ) -> tuple[str, int, int]:
                req = Request.of([Message(role=m["role"], content=m["content"]) for m in messages],  # type: ignore[arg-type]
                                 temperature=temperature, max_tokens=max_tokens)  # fmt: skip
                (c,) = loop.run(ctx.llm.complete(req, phase="peer", salt=f"peer:{name}"))
                return c.text, c.usage.prompt_tokens, c.usage.completion_tokens

            def score(item: Item, text: str) -> float:
                return loop.run(ctx.verifier.verify(item, text)).reward

            cfg = spec.tfgrpo
            assert cfg is not None
            budget = cfg.epochs * (cfg.steps_per_epoch or 1) * cfg.batch_size * cfg.group_size
            pctx = PeerContext(
                train=ctx.split.train, system=spec.prompt.system, template=spec.prompt.template, score=score,
                chat=chat, api_base=api_base, model_alias=ALIAS, budget_rollouts=budget,
                max_tokens=cfg.max_tokens or spec.eval.max_tokens, temperature=cfg.temperature,
                workdir=ctx.run.path / "peer", seed=spec.run.seed,
                # youtu-agent sends its updater calls with no length cap or temperature; on a CPU server an
                # uncapped ramble takes minutes, so they get a cap and memrl's learner temperature
                extra={"group_size": cfg.group_size, "batch_size": cfg.batch_size, "n_ctx": spec.model.n_ctx,
                       "updater_max_tokens": 1024, "updater_temperature": cfg.learner_temperature},
            )  # fmt: skip
            pctx.workdir.mkdir(parents=True, exist_ok=True)
            result = peer.learn(pctx)
            atomic_write(saved, result.model_dump_json(indent=1))
            ctx.save_usage()
        t0 = time.perf_counter()
        score_prompt(ctx, result.system, result.template, "eval")
        return {"label": "eval", "learn_seconds": result.seconds, "eval_seconds": time.perf_counter() - t0,
                "rollouts": result.rollouts, "calls": result.calls, "cached_calls": 0,
                "tokens": (result.prompt_tokens or 0) + (result.completion_tokens or 0),
                "prompt": {"system": result.system, "template": result.template}, "detail": result.detail}  # fmt: skip
    finally:
        loop.close()
        if ctx.llm.cache is not None:
            ctx.llm.cache.close()


def peer_available(name: str) -> str | None:
    """None when the peer can run here, else why not."""
    if name == "gepa":
        try:
            import gepa  # noqa: F401

            from bench.peers import gepa_peer  # noqa: F401
        except ImportError as e:
            return f"gepa is not installed ({e}); pip install 'memrl[bench]'"
        return None
    try:
        from bench.peers import youtu_peer
    except ImportError as e:
        return f"the youtu-agent peer is missing ({e})"
    check = getattr(youtu_peer, "unavailable", None)
    return check() if check else None


# ------------------------------------------------------------------------------------------------ report


def summarise(
    out: Path, task: Path, spec: TaskSpec, done: dict[str, dict[str, Any]], skipped: dict[str, str]
) -> dict[str, Any]:
    train, test = load_items(spec)
    rows: dict[str, Any] = {}
    base_acc = tool_acc = None
    for name in [c for c in ORDER if c in done]:
        info = done[name]
        acc, trunc = per_item(RunDir(out / name), info["label"], test)
        m, lo, hi = mean_ci(acc)
        row = {
            "accuracy": m,
            "ci": [lo, hi],
            "n": len(acc),
            "truncated_share": sum(trunc) / len(trunc),
            **info,
            # per item, in held-out order: anyone can recompute the table (and its paired tests) from these
            "items": [
                {"id": it.id, "score": a, "truncated": t} for it, a, t in zip(test, acc, trunc, strict=True)
            ],
        }
        if name == "none":
            base_acc = acc
        elif base_acc is not None:
            row["vs_none"] = paired(base_acc, acc)
        if name == "tool":
            tool_acc = acc
        elif tool_acc is not None and uses_tool(name):
            row["vs_tool"] = paired(tool_acc, acc)
        start = tool_acc if uses_tool(name) else base_acc
        if (
            name in MEMRL and start is not None
        ):  # its epoch-0 evaluation replays `none` (or `tool`) from the cache
            acc0, _ = per_item(RunDir(out / name), BASE_LABEL, test)
            row["epoch0_matches_baseline"] = acc0 == start
        rows[name] = row
    return {"task": str(task.relative_to(ROOT) if task.is_relative_to(ROOT) else task), "model": spec.model.name,
            "held_out": len(test), "train": len(train),
            "date": dt.date.today().isoformat(), "conditions": rows, "skipped": skipped}  # fmt: skip


def load_items(spec: TaskSpec) -> tuple[list[Item], list[Item]]:
    """(train, held-out) of the task, as every condition sees them."""
    from memrl.tasks.datasets import load_split

    split = load_split(spec.data, spec.base_dir)
    return split.train, split.test


def markdown(summary: dict[str, Any], command: str) -> str:
    lines = [
        f"Held-out accuracy, {summary['model']}, `{summary['task']}`: {summary['held_out']} held-out items, "
        f"{summary['train']} training items, greedy answers; run {summary['date']} with `{command}`.",
        "",
        "| condition | held-out accuracy (95 % CI) | vs none: paired diff (95 % CI) | won / lost | "
        "vs tool: paired diff (95 % CI) | won / lost | truncated | "
        "learning rollouts | learning calls (shared via cache) | learning tokens | learning s (this run) | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cells(vs: dict[str, Any] | None) -> str:
        if not vs:
            return "— | —"
        return (f"{vs['diff']:+.3f} ({vs['lo']:+.3f}, {vs['hi']:+.3f}) | "
                f"{vs['wins']} / {vs['losses']} (p {vs['p_mcnemar']:.2f})")  # fmt: skip

    for name, r in summary["conditions"].items():
        lines.append(
            f"| {name} | {r['accuracy']:.3f} ({r['ci'][0]:.3f}, {r['ci'][1]:.3f}) | {cells(r.get('vs_none'))} | "
            f"{cells(r.get('vs_tool'))} | "
            f"{r['truncated_share']:.0%} | {r['rollouts']} | {r.get('calls', 0)} ({r.get('cached_calls', 0)} shared) | "
            f"{r.get('tokens', 0):,} | "
            f"{r['learn_seconds']:.0f} | {r['eval_seconds']:.0f} |"
        )
    for name, why in summary["skipped"].items():
        lines.append(f"| {name} | not run: {why} | | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> Path | None:
    """Accuracy with intervals, and paired differences vs none: `memrl compare`'s plot (None without matplotlib)."""
    from memrl.compare_report import plot_conditions

    rows = summary["conditions"]
    return plot_conditions(
        path,
        list(rows),
        [r["accuracy"] for r in rows.values()],
        [r["ci"] for r in rows.values()],
        [
            (n, r["vs_none"]["diff"], r["vs_none"]["lo"], r["vs_none"]["hi"])
            for n, r in rows.items()
            if "vs_none" in r
        ],
        title=f"{summary['model']} — {summary['held_out']} held-out items",
        diff_label="paired difference vs none (95 % CI)",
    )


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--smoke", action="store_true", help="tasks/efficacy-smoke.yaml on the embedded default model"
    )
    ap.add_argument(
        "--task", type=Path, help="task file (default: efficacy-gsm.yaml, or efficacy-smoke.yaml)"
    )
    ap.add_argument("--only", help="comma-separated conditions (default: all that can run here)")
    ap.add_argument("--out", type=Path, help="output folder (default: runs/efficacy/<task name>)")
    ap.add_argument("-c", "--set", action="append", default=[], help="task override key.path=value")
    args = ap.parse_args(argv)
    task = args.task or ROOT / "tasks" / ("efficacy-smoke.yaml" if args.smoke else "efficacy-gsm.yaml")
    base = load_spec(task, args.set)
    out = (args.out or ROOT / "runs" / "efficacy" / base.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wanted = [c.strip() for c in args.only.split(",")] if args.only else list(ORDER)
    unknown = [c for c in wanted if c not in ORDER]
    if unknown:
        ap.error(f"unknown condition(s) {unknown}; choose from {', '.join(ORDER)}")
    if "tool" not in wanted and any(uses_tool(c) for c in wanted):
        wanted.insert(0, "tool")  # conditions with the tool are paired against it too
    if "none" not in wanted:
        wanted.insert(0, "none")  # every comparison is paired against it
    command = (
        "python bench/efficacy.py"
        + (" --smoke" if args.smoke else "")
        + (f" --only {args.only}" if args.only else "")
    )
    state_path = out / "conditions.json"
    done: dict[str, dict[str, Any]] = json.loads(state_path.read_text()) if state_path.exists() else {}
    skipped: dict[str, str] = {}
    for name in wanted:  # in the order asked for (`--only`), else ORDER; the table always follows ORDER
        if name in done:
            print(f"[{name}] done earlier (resumed)", flush=True)
            continue
        if name in PEERS and (why := peer_available(name)):
            skipped[name] = why
            print(f"[{name}] skipped: {why}", flush=True)
            continue
        print(f"[{name}] running…", flush=True)
        t0 = time.perf_counter()
        spec = condition_spec(base, task, name, out, args.set)
        folder = out / name
        if name in PLAIN:
            info = run_none(spec, folder)
        elif name in MEMRL:
            info = run_memrl(spec, folder)
        else:
            try:
                info = run_peer(name, spec, folder, args)
            except Exception as e:  # a peer that cannot run here is reported, not fatal to memrl's conditions
                skipped[name] = f"{type(e).__name__}: {e}"
                print(f"[{name}] failed: {skipped[name]}", flush=True)
                continue
        info["wall_seconds"] = time.perf_counter() - t0
        done[name] = info
        atomic_write(state_path, json.dumps(done, indent=1))
        summary = summarise(out, task, base, done, skipped)
        atomic_write(out / "results.json", json.dumps(summary, indent=1))
        atomic_write(out / "table.md", markdown(summary, command))
        print(
            f"[{name}] {summary['conditions'][name]['accuracy']:.3f} in {info['wall_seconds']:.0f}s",
            flush=True,
        )
    summary = summarise(out, task, base, done, skipped)
    atomic_write(out / "results.json", json.dumps(summary, indent=1))
    atomic_write(out / "table.md", markdown(summary, command))
    png = plot(summary, out / "efficacy.png")
    print(markdown(summary, command))
    print(f"written: {out / 'results.json'}, {out / 'table.md'}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
