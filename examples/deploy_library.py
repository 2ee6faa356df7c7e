"""Deploy a learned experience library with a different model than the one that learned it.

A library is text with provenance (`library.json` in a run directory, or a `memrl library export` file),
so any model can use it. `MemoryPolicy.load` reads it, with the run's memory placement when given a run
directory, and `wrap_litellm` puts it into every request of whatever model litellm reaches:

    python examples/deploy_library.py                                   # the embedded local model, offline
    python examples/deploy_library.py --model openai/gpt-4o-mini        # with OPENAI_API_KEY set
    python examples/deploy_library.py --library runs/quickstart --model anthropic/claude-3-5-haiku-latest

The default library, `data/arith-library.json`, stands in for one learned on a hosted model: its lessons
were written for this example in the export format (schema version 1), not learned here.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import TASKS

from memrl import MemoryPolicy
from memrl.wrap import wrap_litellm

LIBRARY = Path(__file__).parent / "data" / "arith-library.json"
SYSTEM = "Solve the word problem. End with: ANSWER <number>."


def model_args(model: str) -> dict[str, Any]:
    """litellm arguments for a model string; `local` is memrl's embedded llama.cpp server."""
    if model != "local":
        return {"model": model}
    from memrl.llm.local import shared_server

    return {"model": "openai/local", "api_base": shared_server("local").api_base, "api_key": "not-needed"}


def last_number(text: str) -> int | None:
    numbers = re.findall(r"-?\d+", text.upper().split("ANSWER")[-1]) or re.findall(r"-?\d+", text)
    return int(numbers[-1]) if numbers else None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(LIBRARY), help="a run directory or a library export")
    ap.add_argument("--model", default="local", help="any litellm model string, or local")
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    ap.add_argument("--budget", type=int, default=400, help="token budget for the injected lessons")
    args = ap.parse_args(argv)
    policy = MemoryPolicy.load(args.library, token_budget=args.budget)
    print(
        f"library v{policy.library.version}: {len(policy.library)} lessons, placed in the {policy.placement} prompt"
    )
    llm, call = wrap_litellm(policy), model_args(args.model)
    right = {"without": 0, "with": 0}
    for task, expected in TASKS[: args.tasks]:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
        shown = policy.memory(task)
        for label, completion in (("without", llm.module.completion), ("with", llm.completion)):
            reply = completion(messages=messages, max_tokens=24, temperature=0, **call)
            answer = last_number(reply.choices[0].message.content or "")
            right[label] += answer == expected
            print(f"  {label:<7} memory: {answer!s:>5} (want {expected})  {task[:50]}")
        print(f"  injected {len(shown.lessons)} lessons, ~{shown.tokens} tokens")
    print(
        f"accuracy without memory {right['without']}/{args.tasks}, with memory {right['with']}/{args.tasks}"
    )
    return {"right": right, "tasks": args.tasks, "lessons": len(policy.library)}


if __name__ == "__main__":
    main()
