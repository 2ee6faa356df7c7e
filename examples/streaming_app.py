"""A streaming chat app with learned memory: `stream=True`, the answer printed chunk by chunk as it comes.

The wrapped client puts the memory into the request; the chunks the app iterates are the model's own.
The app records each answer with its reward, so `policy.learn()` could learn from them later.

    python examples/streaming_app.py                  # the embedded local model (SmolLM2-135M), offline
    python examples/streaming_app.py --base-url http://localhost:8000/v1 --model my-model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import TASKS, make_client
from deploy_library import LIBRARY, SYSTEM, last_number

from memrl import MemoryPolicy
from memrl.wrap import wrap_openai


def ask(client: Any, task: str, *, model: str = "local") -> str:
    """The app's streaming call: print each chunk as it arrives, return the whole answer."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
    stream = client.chat.completions.create(
        model=model, messages=messages, stream=True, max_tokens=24, temperature=0
    )
    pieces = []
    for chunk in stream:
        piece = chunk.choices[0].delta.content if chunk.choices else None
        if piece:
            print(piece, end="", flush=True)
            pieces.append(piece)
    print()
    return "".join(pieces)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(LIBRARY), help="a run directory or a library export")
    ap.add_argument("--base-url", default=None, help="an OpenAI-compatible server (default: the local model)")
    ap.add_argument("--model", default="local")
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    args = ap.parse_args(argv)
    policy = MemoryPolicy.load(args.library)  # memrl
    client = wrap_openai(make_client(args.base_url), policy)  # memrl: streaming calls carry the memory too
    right = 0
    for task, expected in TASKS[: args.tasks]:
        print(f"{task}\n  > ", end="")
        answer = ask(client, task, model=args.model)
        ok = last_number(answer) == expected
        right += ok
        policy.record(task, answer, 1.0 if ok else 0.0, reference=str(expected))  # memrl
    print(f"accuracy {right}/{args.tasks}; {policy.recorded} answers recorded, "
          f"{len(policy.memory(TASKS[0][0]).lessons)} lessons in every request")  # fmt: skip
    return {"right": right, "tasks": args.tasks, "recorded": policy.recorded}


if __name__ == "__main__":
    main()
