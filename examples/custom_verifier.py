"""A custom verifier: judge answers your own way, and use the verdicts both to learn in-app and in `memrl run`.

`UnitVerifier` implements memrl's `Verifier` protocol (`name`, `async verify(item, answer) -> Verdict`):
a unit-conversion answer earns 1 when the number is right (within 1 %) and names the unit, 0.5 when the
number is right but the unit is missing, 0 otherwise, with a reason the learner gets to read.

1. In an app: the verdict's reward and reason go to `policy.record(...)`.
2. In a task file: `verifier: {kind: python, function: "custom_verifier.py:judge"}` runs the same judgement.

    python examples/custom_verifier.py
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import make_client

from memrl import Item, MemoryPolicy, Verdict
from memrl.runner import run_task
from memrl.spec import spec_from_mapping
from memrl.wrap import wrap_openai

ITEMS = [
    Item(id="km", question="How many kilometres are 5 miles?", answer="8.05", meta={"unit": "km"}),
    Item(id="kg", question="How many kilograms are 10 pounds?", answer="4.54", meta={"unit": "kg"}),
    Item(id="cm", question="How many centimetres are 3 inches?", answer="7.62", meta={"unit": "cm"}),
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class UnitVerifier:
    """Right number (1 % tolerance) and the unit named: 1; right number only: 0.5; otherwise 0."""

    name = "units"

    async def verify(self, item: Item, answer: str) -> Verdict:
        want, unit = float(item.answer or "nan"), str(item.meta.get("unit", ""))
        numbers = [float(n) for n in _NUMBER.findall(answer)]
        close = [n for n in numbers if abs(n - want) <= 0.01 * abs(want)]
        if not close:
            return Verdict(reward=0.0, correct=False, reason=f"no number within 1% of {want:g} {unit}")
        if re.search(rf"\b{re.escape(unit)}\b", answer, re.I):
            return Verdict(
                reward=1.0, correct=True, extracted=f"{close[0]:g} {unit}", reason="right, with unit"
            )
        return Verdict(
            reward=0.5, correct=False, extracted=f"{close[0]:g}", reason=f"right number, no unit {unit!r}"
        )


def judge(item: Item, answer: str) -> Coroutine[Any, Any, Verdict]:
    """The same judgement for a task file's `verifier: {kind: python, function: ...}`. memrl awaits what a
    verifier function returns when it is awaitable; a plain bool, number or Verdict works too."""
    return UnitVerifier().verify(item, answer)


def in_app(attempts: int) -> MemoryPolicy:
    verifier, policy = UnitVerifier(), MemoryPolicy()
    client = wrap_openai(make_client(), policy)
    for item in ITEMS:
        for _ in range(attempts):
            reply = client.chat.completions.create(
                model="local",
                messages=[{"role": "user", "content": item.question}],
                max_tokens=16,
                temperature=0.8,
            )
            answer = reply.choices[0].message.content or ""
            verdict = asyncio.run(verifier.verify(item, answer))
            policy.record(item.question, answer, verdict.reward, correct=verdict.correct, feedback=verdict.reason,
                          reference=f"{item.answer} {item.meta['unit']}")  # fmt: skip
            print(f"  {verdict.reward:.1f}  {verdict.reason:<28} {answer.strip()[:60]!r}")
    return policy


def in_task_file(out: Path) -> dict[str, Any]:
    data = out / "units.jsonl"
    data.write_text("".join(i.model_dump_json() + "\n" for i in ITEMS))
    spec = spec_from_mapping(
        {"name": "units", "model": "local", "data": {"source": str(data), "test_size": 2},
         "verifier": {"kind": "python", "function": f"{Path(__file__).resolve()}:judge"},
         "eval": {"k": 1, "max_tokens": 16}, "run": {"dir": str(out / "runs")}},
        base_dir=Path(__file__).parent,
    )  # fmt: skip
    return run_task(spec).results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=2)
    ap.add_argument("--out", default=None, help="folder for the task-file run (default: a temporary one)")
    args = ap.parse_args(argv)
    print("1. in the app: verdicts become recorded outcomes")
    policy = in_app(args.attempts)
    rewards = [o.reward for o in policy.outcomes]
    print(f"   recorded {len(rewards)} outcomes, mean reward {sum(rewards) / len(rewards):.2f}")
    print("2. in a task file: the same function as verifier.kind python")
    out = Path(args.out or tempfile.mkdtemp(prefix="memrl-units-"))
    out.mkdir(parents=True, exist_ok=True)
    results = in_task_file(out)
    score = next(iter(results.values()))["score"]
    print(f"   held-out Mean@1 {score['mean_at_k']:.2f} on {score['n_items']} items (run in {out / 'runs'})")
    return {"outcomes": len(rewards), "rewards": rewards, "task_score": score}


if __name__ == "__main__":
    main()
