"""Prompt reuse by the embedded server, counted from its log: how many prompt tokens it evaluated and how
many it took from its KV cache instead.

llama-cpp-python keeps the tokens of the last request in its context and reuses their longest common
prefix with the next one (`Llama.generate: 812 prefix-match hit, remaining 64 prompt tokens to eval`);
with `model.prompt_cache_mb` it also keeps whole saved states and loads the one sharing the longest prefix
(`Llama._create_completion: cache hit`). After each completion it prints its timings (the server runs
verbose by default), whose
`prompt eval time = … / N tokens` line ends the request. The server's response only says how long the
prompt was, so the log is the one place that says how much of it was computed.

`ReuseMeter` marks where each running server's log ends when a run starts and reads what was written
since when it ends. Two runs in one process sharing a server would count each other's requests too. A
server class whose log reads otherwise (llama.cpp's own llama-server) gives a `parse_reuse(text)` method.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, computed_field

if TYPE_CHECKING:
    from memrl.llm.local import LocalServer

__all__ = ["PromptReuse", "ReuseMeter", "parse_log"]

_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit")
# llama-cpp-python's timing line; llama-server prints the same words without the prefix, and reports its
# reuse otherwise, so its log is not read as if it reused nothing
_END = re.compile(r"llama_perf_context_print: prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")
_STATE_LOAD = "Llama._create_completion: cache hit"


class PromptReuse(BaseModel):
    """Prompt tokens of the completions a local server answered: evaluated, or reused from its cache."""

    requests: int = 0
    evaluated_tokens: int = 0
    reused_tokens: int = 0
    state_loads: int = 0  # saved states loaded from the prompt cache (model.prompt_cache)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> float:
        """Reused / (reused + evaluated): 0 when nothing was asked."""
        seen = self.reused_tokens + self.evaluated_tokens
        return round(self.reused_tokens / seen, 4) if seen else 0.0

    def __add__(self, other: PromptReuse) -> PromptReuse:
        return PromptReuse(
            requests=self.requests + other.requests,
            evaluated_tokens=self.evaluated_tokens + other.evaluated_tokens,
            reused_tokens=self.reused_tokens + other.reused_tokens,
            state_loads=self.state_loads + other.state_loads,
        )

    def sentence(self) -> str:
        return (
            f"local prompt tokens: {self.evaluated_tokens:,} evaluated, {self.reused_tokens:,} reused "
            f"({100 * self.share:.0f} %) over {self.requests} requests"
        )


def parse_log(text: str) -> PromptReuse:
    """Count the completions in a piece of server log: each timing line ends one, with the prompt tokens
    it evaluated; the prefix-match line before it, if any, says how many it reused."""
    out = PromptReuse()
    reused = 0
    for line in text.splitlines():
        if m := _HIT.search(line):
            reused = int(m[1])
        elif _STATE_LOAD in line:
            out.state_loads += 1
        elif m := _END.search(line):
            out.requests += 1
            out.reused_tokens += reused
            out.evaluated_tokens += int(m[1])
            reused = 0
    return out


def _read_since(path: Path, offset: int) -> str:
    """The complete lines written to `path` after byte `offset` (a line still being written is left)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return ""
    return data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class ReuseMeter:
    """Prompt reuse of the local servers running in this process, from now until `read()`."""

    def __init__(self, servers: list[LocalServer] | None = None) -> None:
        from memrl.llm.local import running_servers

        self._servers = running_servers if servers is None else (lambda: list(servers))
        self._marks = {id(s): (s, _log_size(s.log_path)) for s in self._servers()}

    def read(self) -> PromptReuse | None:
        """What the servers logged since the meter started (a server started since counts from its start);
        None when no local server answered a request."""
        servers = {id(s): s for s in self._servers()} | {k: s for k, (s, _) in self._marks.items()}
        total = PromptReuse()
        for key, s in servers.items():
            offset = self._marks[key][1] if key in self._marks else 0
            # a server whose log reads otherwise parses it itself
            parse = getattr(s, "parse_reuse", parse_log)
            total += parse(_read_since(s.log_path, offset))
        return total if total.requests else None
