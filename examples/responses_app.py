"""An app on the OpenAI Responses API (`client.responses.create(instructions=..., input=...)`) with learned
memory: with placement `system` the memory joins `instructions`, with `user` it goes before the `input`.

The embedded llama.cpp server speaks chat completions only, so offline the app's client gets an httpx
transport (`ResponsesOverChat`, below) that answers `POST /responses` through the local model's chat
endpoint. Against OpenAI, pass `--base-url https://api.openai.com/v1 --model gpt-4o-mini` and nothing is
translated.

    python examples/responses_app.py                  # the embedded local model (SmolLM2-135M), offline
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).parent))
from agent_app import TASKS
from deploy_library import LIBRARY, SYSTEM, last_number

from memrl import MemoryPolicy
from memrl.inject.place import content_text
from memrl.testing.openai_wire import responses_body
from memrl.wrap import wrap_openai


def ask(client: OpenAI, task: str, *, model: str = "local") -> str:
    """The app's call, unchanged by memrl."""
    reply = client.responses.create(model=model, instructions=SYSTEM, input=task, max_output_tokens=24)
    return reply.output_text


class ResponsesOverChat(httpx.BaseTransport):
    """`POST .../responses` (text in, text out) answered by `POST .../chat/completions` of the same server."""

    def __init__(self) -> None:
        self.http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/responses"):
            return self.http.handle_request(request)
        body = json.loads(request.read())
        given = body.get("input", "")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given
        messages = [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
        messages += [{"role": m["role"], "content": content_text(m["content"])} for m in items]
        chat = {"model": body["model"], "messages": messages, "max_tokens": body.get("max_output_tokens"),
                "temperature": body.get("temperature", 0)}  # fmt: skip
        url = request.url.copy_with(path=request.url.path.removesuffix("/responses") + "/chat/completions")
        with httpx.Client(transport=self.http, timeout=120) as http:
            reply = http.post(url, json=chat).raise_for_status().json()
        usage = (reply["usage"]["prompt_tokens"], reply["usage"]["completion_tokens"])
        answer = responses_body(reply["choices"][0]["message"]["content"] or "", body["model"], usage)
        return httpx.Response(200, json=answer)


def make_client(base_url: str | None = None) -> OpenAI:
    """The app's own client; offline, the embedded model behind `ResponsesOverChat`."""
    if base_url is not None:
        return OpenAI(base_url=base_url)
    from memrl.llm.local import shared_server

    http = httpx.Client(transport=ResponsesOverChat(), timeout=120)
    return OpenAI(
        base_url=shared_server("local").api_base, api_key="not-needed", max_retries=0, http_client=http
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", default=str(LIBRARY), help="a run directory or a library export")
    ap.add_argument(
        "--base-url", default=None, help="an OpenAI server with the Responses API (default: local)"
    )
    ap.add_argument("--model", default="local")
    ap.add_argument("--placement", choices=["system", "user"], default="system")
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    args = ap.parse_args(argv)
    policy = MemoryPolicy.load(args.library, placement=args.placement)  # memrl
    client = wrap_openai(make_client(args.base_url), policy)  # memrl: responses.create carries the memory
    right = 0
    for task, expected in TASKS[: args.tasks]:
        text = ask(client, task, model=args.model)
        answer = last_number(text)
        right += answer == expected
        policy.record(task, text, 1.0 if answer == expected else 0.0, reference=str(expected))  # memrl
        print(f"{'ok ' if answer == expected else 'bad'} {answer!s:>5}  {task}\n      {text.strip()[:100]}")
    shown = policy.memory(TASKS[0][0])
    print(f"accuracy {right}/{args.tasks}; {len(shown.lessons)} lessons (~{shown.tokens} tokens) in the "
          f"{'instructions' if args.placement == 'system' else 'input'} of every request")  # fmt: skip
    return {"right": right, "tasks": args.tasks, "recorded": policy.recorded}


if __name__ == "__main__":
    main()
