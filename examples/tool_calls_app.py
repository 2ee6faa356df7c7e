"""A tool-calling app with learned memory: the model asks for a tool (`tools=`), the app runs it and sends
the result back as a `tool` message, until the model answers. Every request of the task carries the same
memory (it is chosen for the task, the last user message, which tool results do not change), and the
whole message list is recorded at the end.

The first turn names the tool in `tool_choice`, so the embedded model (whose llama.cpp server only makes
tool calls when one is named) calls it; later turns leave the choice to the model (`auto`).

    python examples/tool_calls_app.py                 # the embedded local model (SmolLM2-135M), offline
    python examples/tool_calls_app.py --base-url https://api.openai.com/v1 --model gpt-4o-mini
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import TASKS, make_client
from deploy_library import LIBRARY, last_number

from memrl import MemoryPolicy
from memrl.wrap import wrap_openai

SYSTEM = "Solve the word problem with the calculate tool, then give the number."
ARGS = {
    "op": {"type": "string", "enum": ["add", "multiply"]},
    "a": {"type": "integer"},
    "b": {"type": "integer"},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Add or multiply two integers.",
            "parameters": {"type": "object", "properties": ARGS, "required": ["op", "a", "b"]},
        },
    }
]
FIRST = {"type": "function", "function": {"name": "calculate"}}


def calculate(op: str, a: int, b: int) -> int:
    return a * b if op == "multiply" else a + b


def run_task(client: Any, task: str, *, model: str = "local", max_turns: int = 4) -> list[dict[str, Any]]:
    """The tool loop for one task; returns every message of it, the final answer last."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": task},
    ]
    for turn in range(max_turns):
        reply = client.chat.completions.create(
            model=model, messages=messages, tools=TOOLS, tool_choice=FIRST if turn == 0 else "auto",
            max_tokens=40, temperature=0,
        )  # fmt: skip
        msg = reply.choices[0].message
        calls = [
            {"id": c.id, "type": "function", "function": c.function.model_dump()}
            for c in msg.tool_calls or []
        ]
        messages.append(
            {"role": "assistant", "content": msg.content or "", **({"tool_calls": calls} if calls else {})}
        )
        if not calls:
            break
        for call in calls:
            try:
                result: Any = calculate(**json.loads(call["function"]["arguments"]))
            except (
                TypeError,
                ValueError,
            ) as e:  # a tiny model's arguments may not fit: say so, as a tool would
                result = f"error: {e}"
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": str(result)})
    return messages


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(LIBRARY), help="a run directory or a library export")
    ap.add_argument("--base-url", default=None, help="an OpenAI-compatible server (default: the local model)")
    ap.add_argument("--model", default="local")
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    args = ap.parse_args(argv)
    policy = MemoryPolicy.load(args.library)  # memrl
    client = wrap_openai(
        make_client(args.base_url), policy
    )  # memrl: every turn of the loop carries the memory
    right = 0
    for task, expected in TASKS[: args.tasks]:
        messages = run_task(client, task, model=args.model)
        answer = last_number(messages[-1]["content"] or "")
        right += answer == expected
        policy.record(task, messages, 1.0 if answer == expected else 0.0, reference=str(expected))  # memrl
        tools = [m["content"] for m in messages if m["role"] == "tool"]
        print(f"{'ok ' if answer == expected else 'bad'} {answer!s:>5}  {task}  (tool results {tools})")
    print(f"accuracy {right}/{args.tasks}; {policy.recorded} tool loops recorded with all their messages")
    return {"right": right, "tasks": args.tasks, "recorded": policy.recorded}


if __name__ == "__main__":
    main()
