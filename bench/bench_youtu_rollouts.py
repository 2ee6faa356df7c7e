"""Training-Free GRPO rollouts per second, memrl against youtu-agent's practice loop, end to end.

Both learn on the same 64 training sums, in steps of 8 queries x 8 rollouts at temperature 0.7, with 8 calls
in flight, against one instant local OpenAI-compatible server (`PeerServer`, in this process). It answers
every stage of both loops at once: a rollout gets the right sum on every other sample of a query (so every
group is mixed and both learners run every stage), memrl's learner gets JSON for its schema, youtu's
updater gets well-formed `<Experiences>` blocks and ```json operation lists.

- memrl: `memrl run task.yaml` as a subprocess, timed from process start to exit. Its task evaluates one
  held-out item before and after learning (2 calls youtu does not make); it is timed with them.
- youtu-agent: `scripts/run_training_free_GRPO.py` in its own venv (`bench/peers/youtu_setup.sh`), driven by
  `bench/peers/youtu_peer.py` with the anchor's own numeric verifier (no bridge back to memrl), timed from
  the anchor's process start to exit. The peer's counting proxy sits between it and the server.

Repeats alternate which side goes first; the figure is the median of the per-repeat ratios of rollouts/s
(memrl / youtu). A full run merges it into bench/results/performance.json as `youtu_rollouts_ratio`.

    python bench/bench_youtu_rollouts.py                 # 4 steps of 8 x 8 (256 rollouts a side), 3 repeats
    python bench/bench_youtu_rollouts.py --smoke         # 1 step of 4 x 4, memrl only unless youtu is set up
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from bench.bench_tfgrpo_step import InstantServer  # noqa: E402
from bench.peers import youtu_peer  # noqa: E402
from bench.peers.base import PeerContext  # noqa: E402
from bench.performance import RESULTS, save_figures  # noqa: E402
from memrl.testing import Action  # noqa: E402
from memrl.testing.server import chat_body  # noqa: E402
from memrl.types import Item, question_key  # noqa: E402

KEY_ENV = "MEMRL_BENCH_KEY"
TEMPERATURE = 0.7
CONCURRENCY = 8


def sums(n: int = 64) -> list[Item]:
    return [
        Item(id=f"q{i}", question=f"What is {i % 9 + 1} + {i % 7 + 2}?", answer=str(i % 9 + i % 7 + 3))
        for i in range(n)
    ]


class PeerServer(InstantServer):
    """memrl's instant server, plus youtu-agent's updater stages and per-sample right/wrong rollouts."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: Counter[str] = Counter()
        self.stages: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _next(self, record: dict[str, Any]) -> Action:
        body = record["body"]
        stage = youtu_peer._classify(body)
        user = str(body["messages"][-1]["content"])
        if body.get("response_format"):  # memrl's learner: JSON for its schema
            with self._count_lock:
                self.stages["memrl_learner_json"] += 1
            return super()._next(record)
        with self._lock:
            self.requests.append(record)
        with self._count_lock:
            self.stages[stage] += 1
        if stage == "rollout_summary":
            return Action(text="Summary: added the two numbers.\nKey finding: re-check the last digit.")
        if stage == "group_advantage":
            return Action(
                text="<Experiences>\n1. Re-check the sum before writing the final number.\n</Experiences>"
            )
        if stage in ("group_update", "batch_update"):
            ops = [{"operation": "ADD", "id": None, "content": "Re-check the sum before the final number."}]
            return Action(text="```json\n" + json.dumps(ops) + "\n```")
        # a rollout, an evaluation answer or memrl's per-rollout summary: one number per sample, every
        # other sample of a question right
        nums = [int(x) for x in re.findall(r"\d+", user)[:2]] or [0]
        n = int(body.get("n") or 1)
        key = question_key(user)
        with self._count_lock:
            first = self.attempts[key]
            self.attempts[key] += n
        out = chat_body(Action(text=""), n)
        for i, ch in enumerate(out["choices"]):
            ans = sum(nums) + (first + i) % 2
            ch["message"]["content"] = (
                f"{nums[0]} + {nums[-1]} = {ans}.\n<answer>\n\\boxed{{{ans}}}\n</answer>"
            )
        out["usage"] = {"prompt_tokens": 20, "completion_tokens": 12 * n, "total_tokens": 20 + 12 * n}
        return Action(body=json.dumps(out))


def memrl_side(api_base: str, steps: int, batch: int, group: int) -> dict[str, Any]:
    """One `memrl run` process: its wall seconds, rollouts, calls and learning-loop seconds."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "sums.jsonl").write_text(
            "".join(
                it.model_dump_json(include={"id", "question", "answer"}) + "\n"
                for it in sums(steps * batch + 1)
            )
        )
        task = {
            "name": "rollouts", "algorithm": "tfgrpo",
            "model": {"name": "openai/bench", "api_base": api_base, "api_key_env": KEY_ENV,
                      "max_concurrency": CONCURRENCY},
            "data": {"source": "sums.jsonl", "test_size": 1, "seed": 0},
            "eval": {"k": 1, "max_tokens": 16},
            "tfgrpo": {"epochs": 1, "steps_per_epoch": steps, "batch_size": batch, "group_size": group,
                       "temperature": TEMPERATURE},
        }  # fmt: skip
        (tmp / "task.yaml").write_text(yaml.safe_dump(task))
        cmd = [
            sys.executable,
            "-m",
            "memrl.cli",
            "run",
            str(tmp / "task.yaml"),
            "--run-dir",
            str(tmp / "run"),
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=tmp, env={**os.environ, KEY_ENV: "sk-bench"}, capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"memrl run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        metrics = [json.loads(x) for x in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
        calls = [json.loads(x) for x in (tmp / "run" / "calls.jsonl").read_text().splitlines()]
        return {
            "seconds": wall,
            "rollouts": sum(m["groups"] for m in metrics) * group,
            "loop_seconds": sum(m.get("step_seconds", 0.0) for m in metrics),
            "calls": dict(Counter(c.get("phase", "?") for c in calls)),
        }


def youtu_side(api_base: str, steps: int, batch: int, group: int) -> dict[str, Any]:
    """One anchor process (youtu-agent practice) over the same items: its wall seconds, rollouts and calls."""
    with tempfile.TemporaryDirectory() as d:
        ctx = PeerContext(
            train=sums(steps * batch),
            system="You add numbers.",
            template="{{ question }}",
            score=lambda item, text: 0.0,  # unused: the anchor's own numeric verifier judges
            chat=lambda *a: ("", 0, 0),  # unused: the anchor brings its own client
            api_base=api_base,
            model_alias="bench",
            budget_rollouts=steps * batch * group,
            max_tokens=16,
            temperature=TEMPERATURE,
            workdir=Path(d) / "youtu",
            extra={"group_size": group, "batch_size": batch, "concurrency": CONCURRENCY,
                   "updater_concurrency": CONCURRENCY, "verify": "numeric", "log_level": "WARNING"},
        )  # fmt: skip
        res = youtu_peer.learn(ctx)
        runs = res.detail["runs"]
        return {
            "seconds": sum(r["seconds"] for r in runs),
            "rollouts": res.rollouts,
            "calls": res.detail["calls_by_kind"],
            "anchor_runs": len(runs),
            "experiences": len(res.detail["experiences"]),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-save", action="store_true", help=f"do not write {RESULTS.name}")
    args = ap.parse_args()
    steps, batch, group = (1, 4, 4) if args.smoke else (4, 8, 8)
    repeats = 1 if args.smoke else args.repeats
    with_youtu = youtu_peer.is_set_up()
    if not with_youtu and not args.smoke:
        raise SystemExit(youtu_peer.NOT_SET_UP)
    load0 = os.getloadavg()
    rows: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    with PeerServer() as srv:
        for i in range(repeats):
            sides: dict[str, Any] = {}
            order = ["youtu", "memrl"] if i % 2 else ["memrl", "youtu"]
            for side in order:
                if side == "youtu" and not with_youtu:
                    sides["youtu"] = None
                    continue
                fn = memrl_side if side == "memrl" else youtu_side
                sides[side] = fn(srv.api_base, steps, batch, group)
                r = sides[side]
                print(
                    f"repeat {i} {side:5s}: {r['rollouts']} rollouts in {r['seconds']:.1f} s "
                    f"= {r['rollouts'] / r['seconds']:.1f}/s; calls {r['calls']}",
                    flush=True,
                )
            rows.append((sides["memrl"], sides["youtu"]))
    load1 = os.getloadavg()
    m = rows[-1][0]
    print(f"memrl learning loop (its steps alone): {m['rollouts'] / m['loop_seconds']:.1f} rollouts/s")
    if not with_youtu:
        print("youtu-agent is not set up (bench/peers/youtu_setup.sh): memrl side only")
        return
    ratios = [(mr["rollouts"] / mr["seconds"]) / (yr["rollouts"] / yr["seconds"]) for mr, yr in rows if yr]
    ratio = statistics.median(ratios)
    print(
        f"rollouts/s ratio (memrl / youtu-agent), process start to exit: {ratio:.2f}x "
        f"(median of {len(ratios)} alternating repeats, range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in load0)} at start, {load1[0]:.2f} at end")
    if not (args.smoke or args.no_save):
        save_figures("bench_youtu_rollouts.py", {"youtu_rollouts_ratio": ratio}, load0)
        print(f"saved to {RESULTS}")


if __name__ == "__main__":
    main()
