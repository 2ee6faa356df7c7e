"""An existing agent app, before memory: a tool-using loop over the OpenAI SDK. It knows nothing of memrl.

The agent solves arithmetic word problems with two tools, `add` and `multiply`, called by writing
`CALL add 12 30`; the app runs the tool and sends back `RESULT 42`; the agent ends with `ANSWER 42`.

    python examples/agent_app.py                       # the embedded local model (SmolLM2-135M), offline
    python examples/agent_app.py --base-url http://localhost:8000/v1 --model my-model

`agent_with_memory.py` is this app plus learned memory, in a few added lines.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from openai import OpenAI

SYSTEM = (
    "You are a calculator agent with two tools: add and multiply. To use a tool, write one line such as "
    "CALL add 12 30 or CALL multiply 6 7 and wait for the RESULT. When you know the answer, write "
    "ANSWER followed by the number."
)
TASKS = [
    ("Tom has 12 apples and buys 30 more. How many apples does he have?", 42),
    ("A box holds 6 rows of 7 eggs. How many eggs are in the box?", 42),
    ("A train travels 25 km and then 17 km more. How far does it travel?", 42),
    ("There are 4 bags with 9 marbles each. How many marbles are there?", 36),
]
TOOLS = {"add": lambda a, b: a + b, "multiply": lambda a, b: a * b}
_CALL = re.compile(r"CALL\s+(add|multiply)\s+(-?\d+)\D+?(-?\d+)", re.I)
_NUMBER = re.compile(r"-?\d+")


def run_agent(
    client: Any, task: str, *, model: str = "local", max_steps: int = 3, temperature: float = 0.7
) -> tuple[int | None, list[dict[str, str]]]:
    """Run the tool loop on one task; returns the final answer (None if there is none) and the messages."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
    for _ in range(max_steps):
        reply = client.chat.completions.create(
            model=model, messages=messages, max_tokens=16, temperature=temperature, stop=["\n"]
        )
        text = reply.choices[0].message.content or ""
        messages.append({"role": "assistant", "content": text})
        call = _CALL.search(text)
        if call and "ANSWER" not in text.upper():
            result = TOOLS[call.group(1).lower()](int(call.group(2)), int(call.group(3)))
            messages.append({"role": "user", "content": f"RESULT {result}"})
            continue
        numbers = _NUMBER.findall(text.upper().split("ANSWER")[-1])
        return (int(numbers[0]) if numbers else None), messages
    return None, messages


def make_client(base_url: str | None = None) -> OpenAI:
    """The app's own OpenAI client. Offline it talks to memrl's embedded llama.cpp server (started here)."""
    if base_url is None:
        from memrl.llm.local import shared_server

        base_url = shared_server("local").api_base
    return OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=None, help="an OpenAI-compatible server (default: the local model)")
    ap.add_argument("--model", default="local")
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    args = ap.parse_args(argv)
    client = make_client(args.base_url)
    right = 0
    for task, expected in TASKS[: args.tasks]:
        answer, messages = run_agent(client, task, model=args.model)
        right += answer == expected
        print(f"{'ok ' if answer == expected else 'bad'} {answer!s:>5}  {task}  ({len(messages) - 2} turns)")
    print(f"accuracy {right}/{args.tasks}")
    return {"right": right, "tasks": args.tasks}


if __name__ == "__main__":
    main()
