"""Token and dollar accounting per call, per phase and per run, with hard budgets."""

from __future__ import annotations

import json
import os
import threading
import weakref
from pathlib import Path

from pydantic import BaseModel

from memrl.errors import BudgetExceeded
from memrl.types import Usage

__all__ = ["Ledger", "CallRecord"]


class CallRecord(BaseModel):
    """One model call as the ledger saw it (no prompt or key, only counts)."""

    model: str
    phase: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    attempts: int = 1
    cached: bool = False


class Ledger:
    """Sums usage by phase; refuses new calls once a budget is spent.

    Budgets are checked before each call, so a run stops between calls with everything paid for kept;
    calls already in flight may finish and overshoot by at most one call per concurrent slot.

    The journal stays open for appends: each record is one unbuffered `os.write` of a whole line to an
    O_APPEND descriptor, so it is in the kernel (and survives a kill of this process) when `record`
    returns, without an open and close per call.
    """

    def __init__(
        self,
        *,
        max_tokens: int | None = None,
        max_usd: float | None = None,
        calls_path: str | Path | None = None,
        start: dict[str, Usage] | None = None,
    ) -> None:
        """`calls_path` is the ledger's journal, one line per call. When it exists already (a resumed
        run) the totals are replayed from it, so calls paid for just before a kill still count; `start`
        is used only without a journal."""
        self.max_tokens, self.max_usd = max_tokens, max_usd
        self.by_phase: dict[str, Usage] = dict(start or {})
        self._calls_path = Path(calls_path) if calls_path else None
        self._lock = threading.Lock()
        self._fd: int | None = None
        if self._calls_path is not None and self._calls_path.exists():
            self.by_phase = {}
            for rec in self._replay(self._calls_path):
                self.by_phase[rec.phase] = self.by_phase.get(rec.phase, Usage()) + self._usage(rec)
        self._total = sum(self.by_phase.values(), Usage())  # kept running: budget checks do not re-sum

    @staticmethod
    def _replay(path: Path) -> list[CallRecord]:
        """The journal's records; a last line torn by a kill is cut off the file."""
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            with path.open("r+b") as f:
                f.truncate(len(data))
        out = []
        for line in data.decode("utf-8", errors="replace").splitlines():
            try:
                out.append(CallRecord.model_validate_json(line))
            except ValueError:
                continue
        return out

    @staticmethod
    def _usage(rec: CallRecord) -> Usage:
        return Usage(
            prompt_tokens=0 if rec.cached else rec.prompt_tokens,
            completion_tokens=0 if rec.cached else rec.completion_tokens,
            cost_usd=0.0 if rec.cached else rec.cost_usd,
            calls=0 if rec.cached else 1,
            cached_calls=1 if rec.cached else 0,
        )

    @property
    def total(self) -> Usage:
        return self._total

    def check(self) -> None:
        t = self.total
        if self.max_tokens is not None and t.total_tokens >= self.max_tokens:
            raise BudgetExceeded("token", t.total_tokens, self.max_tokens)
        if self.max_usd is not None and t.cost_usd >= self.max_usd:
            raise BudgetExceeded("USD", round(t.cost_usd, 6), self.max_usd)

    def record(self, rec: CallRecord) -> None:
        u = self._usage(rec)
        line = (rec.model_dump_json() + "\n").encode() if self._calls_path is not None else b""
        with self._lock:
            self.by_phase[rec.phase] = self.by_phase.get(rec.phase, Usage()) + u
            self._total = self._total + u
            if line:
                self._append(line)

    def _append(self, line: bytes) -> None:
        if self._fd is None:
            assert self._calls_path is not None
            self._calls_path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._closer = weakref.finalize(self, os.close, self._fd)
        while line:  # a regular file takes the whole line in one write; loop in case it does not
            line = line[os.write(self._fd, line) :]

    def close(self) -> None:
        """Close the journal (records made afterwards reopen it)."""
        with self._lock:
            if self._fd is not None:
                self._closer()
                self._fd = None

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            out = {k: v.model_dump() | {"total_tokens": v.total_tokens} for k, v in self.by_phase.items()}
        t = self.total
        out["total"] = t.model_dump() | {"total_tokens": t.total_tokens}
        return out

    @classmethod
    def load_phases(cls, path: str | Path) -> dict[str, Usage]:
        p = Path(path)
        if not p.exists():
            return {}
        data = json.loads(p.read_text())
        return {k: Usage.model_validate(v) for k, v in data.items() if k != "total"}
