"""The app of `agent_app.py` with learned memory: a few added lines, marked `# memrl`; nothing else changed
in how the app calls its model (`reward` is the app's own success check).

Each round runs every task once; outcomes are recorded with their reward; `learn()` runs one
Training-Free GRPO update over tasks whose attempts scored differently, and the lessons it writes go
into the system prompt of every later request. The library is exported to `--memory` and loaded next time.

    python examples/agent_with_memory.py --rounds 3 --memory runs/agent-memory.json

On the embedded SmolLM2-135M this shows the mechanics (requests carry lessons, the library grows), not a gain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import TASKS, make_client, run_agent

from memrl import MemoryPolicy
from memrl.spec import TFGRPOSpec
from memrl.wrap import wrap_openai


def reward(answer: int | None, expected: int, messages: list[dict[str, str]]) -> float:
    """1 for the right answer; partial credit for using a tool, so attempts differ even when all are wrong."""
    if answer == expected:
        return 1.0
    return 0.3 if any(m["content"].startswith("RESULT") for m in messages) else 0.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", default="runs/agent-memory.json", help="library export, loaded and saved")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    ap.add_argument("--learner", default="local", help="the model that writes lessons (any model string)")
    args = ap.parse_args(argv)
    small = TFGRPOSpec(summary_words=20, learner_max_tokens=96)  # short learner answers for a tiny model
    memory = Path(args.memory)
    options: dict[str, Any] = {"learner": args.learner, "tfgrpo": small}
    policy = MemoryPolicy.load(memory, **options) if memory.exists() else MemoryPolicy(**options)  # memrl
    client = wrap_openai(make_client(), policy)  # memrl: the only change to how the app calls its model

    for r in range(1, args.rounds + 1):
        right = 0
        for task, expected in TASKS[: args.tasks]:
            answer, messages = run_agent(client, task)
            right += answer == expected
            score = reward(answer, expected, messages)
            policy.record(task, messages, score, reference=str(expected))  # memrl
        result = policy.learn()  # memrl
        print(f"round {r}: accuracy {right}/{args.tasks}; learned from {result.learned_groups} groups, "
              f"ops {result.ops}; library v{result.library_version} with {result.lessons} lessons")  # fmt: skip
    policy.export(memory)  # memrl: the next start loads what was learned
    for lesson in policy.library.active():
        print(f"  {lesson.id}: {lesson.text}")
    print(f"saved to {memory}")
    policy.close()
    return {"recorded": policy.recorded, "lessons": len(policy.library), "version": policy.library.version}


if __name__ == "__main__":
    main()
