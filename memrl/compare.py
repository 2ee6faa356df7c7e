"""Does this memory help on my model and my data? Answer a task's held-out split under each memory and compare.

    res = compare_memories(load_compare_spec("tasks/quickstart.yaml"), ["none", "runs/a", "lib.json"])
    print(res.markdown())

Every condition answers the same held-out items with the same model, prompt and eval settings (greedy, or k
samples at the task's temperature) and the same seeds (`memrl.algos.evaluate`: the salt is the item, not the
label), so differences come from the memory alone. The memory of each item is `MemoryPolicy.memory(question)`
of that source, placed with the policy's placement: selected and placed as when deployed. All conditions share
one run directory, response cache, ledger and budget: a request two conditions send alike (an item for which a
library injects nothing, say) is paid once. Each condition is scored against the first with a paired
difference (`memrl.metrics.paired_difference`): a 95 % interval, items won and lost, McNemar's p, a verdict.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from memrl.act import Preload
from memrl.algos.evaluate import evaluate_items
from memrl.context import Progress
from memrl.errors import ConfigError, MemrlError
from memrl.inject import Injection
from memrl.llm.managed import RawClient
from memrl.metrics import PairedDiff, Score, paired_difference
from memrl.policy import MemoryPolicy
from memrl.runs import RunDir, atomic_write
from memrl.spec import TaskSpec, load_spec
from memrl.types import Item, ItemResult, Usage

__all__ = ["NONE", "ConditionResult", "CompareResult", "compare_memories", "load_compare_spec"]

log = logging.getLogger(__name__)

#: The memory source that means "the prompt alone".
NONE = "none"
_SOURCES = ("`none`, a run directory (runs/NAME), a library export (.json, from `memrl library export`), "
            "a chroma directory or a chroma server URL (http://host:8000)")  # fmt: skip


class ConditionResult(BaseModel):
    """One memory's answers to the held-out items, scored, and compared with the first condition's."""

    name: str = Field(description="The memory source as given (`none`, a path or URL).")
    label: str = Field(description="Its evaluation in the run directory: `<label>.jsonl`.")
    placement: str
    lessons: int = Field(description="Active lessons in the source.")
    memory_tokens: float = Field(description="Mean estimated tokens of the memory block per item.")
    score: Score
    per_item: list[float] = Field(description="Accuracy per item (correct samples / k), in item order.")
    vs_first: PairedDiff | None = None
    verdict: str = Field(description="improved | no significant change | worse; `baseline` for the first.")
    usage: Usage = Field(description="Tokens and cost of its answers, replayed ones at what they first cost.")
    paid: Usage = Field(
        description="This invocation's fresh calls (`calls`) and cache replays (`cached_calls`)."
    )
    seconds: float
    note: str = ""


class CompareResult(BaseModel):
    task: str
    model: str
    run_dir: str
    item_ids: list[str]
    k: int
    temperature: float
    conditions: list[ConditionResult]
    files: dict[str, str] = Field(default_factory=dict)
    seconds: float = 0.0

    def sentences(self) -> list[str]:
        """One line per condition after the first: its paired difference and verdict."""
        first = self.conditions[0].name
        return [f"{c.name} vs {first}: {c.vs_first.sentence()}" for c in self.conditions[1:] if c.vs_first]

    def markdown(self) -> str:
        from memrl.compare_report import markdown

        return markdown(self)


def load_compare_spec(task: str | Path, overrides: Sequence[str] = ()) -> TaskSpec:
    """The task file (or a run directory's saved `spec.yaml`) whose held-out split is answered."""
    path = Path(task).expanduser()
    if (
        path.suffix == ".json"
        and path.is_file()
        and re.search(r'"(lessons|stores)"', path.read_text()[:4000])
    ):
        raise ConfigError(f"{str(path)!r} is a memory (a library or memory export), not a task file: pass it "
                          f"as --memory {path} after the task file (e.g. tasks/quickstart.yaml)")  # fmt: skip
    try:
        if path.is_dir():
            if not (path / "spec.yaml").exists():
                raise ConfigError(f"{str(path)!r} is a folder without spec.yaml")
            return RunDir(path).load_spec(list(overrides))
        return load_spec(path, list(overrides))
    except ConfigError as e:
        raise ConfigError(
            f"{e}\n  memrl compare takes the task file first (e.g. tasks/quickstart.yaml, or a run directory "
            "whose spec.yaml to reuse), then one --memory per condition: " + _SOURCES
        ) from None


def _open_source(source: str, options: dict[str, Any]) -> MemoryPolicy | None:
    if source.strip().lower() == NONE:
        return None
    try:
        return MemoryPolicy.load(source, **options)
    except (MemrlError, OSError, ValueError, KeyError) as e:
        raise ConfigError(f"--memory {source!r}: {e}\n  give {_SOURCES}") from None


def _note(source: str) -> str:
    """What MemoryPolicy cannot carry over from a run: its worked cases live under another namespace."""
    spec_file = Path(source).expanduser() / "spec.yaml"
    if spec_file.is_file() and re.search(r"^\s*experiences:\s*(cases|both)\b", spec_file.read_text(), re.M):
        return "the run learned worked cases; MemoryPolicy.load uses its lessons only"
    return ""


def _label(name: str, taken: set[str], digest: str) -> str:
    slug = (
        re.sub(r"[^A-Za-z0-9]+", "-", Path(name.rstrip("/")).stem or name).strip("-").lower()[:32] or "memory"
    )
    base, n = slug, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return f"compare-{slug}-{digest[:8]}"


def _delta(after: Usage, before: Usage) -> Usage:
    return Usage(**{f: getattr(after, f) - getattr(before, f) for f in Usage.model_fields})


def compare_memories(
    spec: TaskSpec,
    memories: Sequence[str],
    *,
    out: str | Path | None = None,
    client: RawClient | None = None,
    progress: Progress | None = None,
    policy_options: dict[str, Any] | None = None,
) -> CompareResult:
    """Answer `spec`'s held-out split under each memory source (`none` or anything `MemoryPolicy.load`
    accepts) and compare each with the first. `out` is the run directory shared by all conditions (default
    `<run.dir>/compare-<task name>`; a rerun resumes and replays from its cache); `client` replaces the model
    (a test double); `policy_options` go to `MemoryPolicy.load`. Writes `compare.json`, `table.md`,
    `items.jsonl` and `compare.png` (when matplotlib is installed) there."""
    from memrl.compare_report import plot, write_items
    from memrl.runner import open_context

    if not memories:
        raise ConfigError("compare needs at least one --memory (e.g. --memory none --memory runs/NAME)")
    if spec.data.source.startswith("textworld:"):
        raise ConfigError("compare answers question items; interactive games (textworld:) are not supported")
    t0 = time.perf_counter()
    policies = [_open_source(m, policy_options or {}) for m in memories]  # bad sources fail before any call
    folder = Path(out) if out is not None else Path(spec.run.dir) / f"compare-{spec.name}"
    ctx = open_context(spec, folder, client=client)
    items = ctx.split.test[: spec.eval.limit] if spec.eval.limit else ctx.split.test
    taken: set[str] = set()
    conds: list[ConditionResult] = []
    answers: list[tuple[list[ItemResult], dict[str, Injection]]] = []
    try:
        for name, policy in zip(memories, policies, strict=True):
            placement = policy.placement if policy is not None else spec.prompt.memory_placement
            shots = {it.id: policy.memory(it.question) if policy else Injection(text="") for it in items}
            prompt = spec.prompt.model_copy(update={"memory_placement": placement})
            key = json.dumps([spec.model.name, prompt.model_dump(), spec.eval.model_dump(),
                              [shots[it.id].text for it in items]], sort_keys=True)  # fmt: skip
            label = _label(name, taken, hashlib.sha256(key.encode()).hexdigest())
            lessons = len(policy.library.active()) if policy else 0
            conds.append(ConditionResult(
                name=name, label=label, placement=placement, lessons=lessons, score=_EMPTY, per_item=[],
                memory_tokens=sum(s.tokens for s in shots.values()) / max(1, len(shots)), verdict="baseline",
                usage=Usage(), paid=Usage(), seconds=0.0, note=_note(name) if policy else "",
            ))  # fmt: skip
            answers.append(([], shots))

        async def answer_all() -> None:  # one event loop for all: the model's slots and clients belong to it
            for i, c in enumerate(conds):
                shots = answers[i][1]
                before, c0 = ctx.llm.ledger.total, time.perf_counter()
                prompt = spec.prompt.model_copy(update={"memory_placement": c.placement})
                res = await evaluate_items(
                    ctx.llm, ctx.verifier, items, prompt=prompt, cfg=spec.eval, run=ctx.run, label=c.label,
                    memory_for=_memory_for(shots), progress=progress, act=spec.act,
                    preload_for=_preload_for(policies[i]),
                )  # fmt: skip
                rows = _rows(ctx.run, c.label, items)
                answers[i] = (rows, shots)
                c.score, c.per_item = res.score, [r.n_correct / len(r.samples) for r in rows]
                c.usage = sum((s.usage for r in rows for s in r.samples), Usage())
                c.paid, c.seconds = _delta(ctx.llm.ledger.total, before), time.perf_counter() - c0

        asyncio.run(answer_all())
    finally:
        ctx.save_usage()
        if ctx.llm.cache is not None:
            ctx.llm.cache.close()
        for p in policies:
            if p is not None:
                p.close()
    for c in conds[1:]:
        c.vs_first = paired_difference(conds[0].per_item, c.per_item)
        c.verdict = c.vs_first.verdict
    result = CompareResult(
        task=spec.name, model=spec.model.name, run_dir=str(ctx.run.path), item_ids=[it.id for it in items],
        k=spec.eval.k, temperature=spec.eval.temperature, conditions=conds, seconds=time.perf_counter() - t0,
    )  # fmt: skip
    run = ctx.run
    files = {
        "table": run.file("table.md"),
        "items": run.file("items.jsonl"),
        "result": run.file("compare.json"),
    }
    if (png := plot(result, run.file("compare.png"))) is not None:
        files["plot"] = png
    result.files = {k: str(v) for k, v in files.items()}
    write_items(files["items"], result, answers)
    atomic_write(files["table"], result.markdown())
    atomic_write(files["result"], result.model_dump_json(indent=1))
    return result


_EMPTY = Score(n_items=0, k=1, mean_at_k=0.0, mean_ci=(0.0, 0.0), pass_at_k=0.0, pass_ci=(0.0, 0.0))


def _memory_for(shots: dict[str, Injection]) -> Callable[[Item], str]:
    return lambda it: shots[it.id].text


def _preload_for(policy: MemoryPolicy | None) -> Callable[[Item], Preload] | None:
    """A run's trusted skills, defined in the sandbox of the items its memory shows them to."""
    if policy is None or policy.skill_library is None:
        return None
    return lambda it: policy.preload(it.question)


def _rows(run: RunDir, label: str, items: list[Item]) -> list[ItemResult]:
    found = {r["item_id"]: ItemResult.model_validate(r) for r in run.read_jsonl(f"{label}.jsonl")}
    return [found[it.id] for it in items]
