"""`memrl compare`: held-out answers under each memory, paired against the first, on a scripted model."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from typer.testing import CliRunner

from memrl.cli import app
from memrl.compare import compare_memories, load_compare_spec
from memrl.errors import ConfigError
from memrl.library import Library
from memrl.llm.base import Request
from memrl.spec import DiversitySpec, spec_from_mapping
from memrl.testing import FunctionClient

HINT = "When adding two numbers, write the sum of both"
OPTS = {"diversity": DiversitySpec(embedder="hash-64")}


def answer(req: Request, seed: int | None) -> str:
    """Right when the lesson is in the prompt or the first number is even; otherwise one too many."""
    text = "\n".join(m.content for m in req.messages)
    a, b = map(int, re.findall(r"\d+", req.messages[-1].content)[:2])
    return str(a + b if HINT in text or a % 2 == 0 else a + b + 1)


class SlowClient(FunctionClient):
    """Yields to the event loop inside each call, so calls wait for the model's concurrency slot."""

    async def complete_once(self, request, n=1, seed=None):
        await asyncio.sleep(0.001)
        return await super().complete_once(request, n, seed)


def task(tmp_path, **eval_):
    data = tmp_path / "sums.jsonl"
    rows = [{"id": f"q{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
            for a in range(1, 9) for b in (1, 2)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"name": "cmp", "algorithm": "evaluate", "model": {"name": "local", "max_concurrency": 2},
           "data": {"source": str(data), "test_size": 10, "seed": 3}, "verifier": {"kind": "math"},
           "eval": {"k": 2, "temperature": 0.7, "max_tokens": 8} | eval_, "run": {"dir": str(tmp_path / "runs")}}  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def export(tmp_path, name, texts):
    lib = Library()
    for t in texts:
        lib.add(t, step=1)
    lib.commit("test")
    return str(lib.export(tmp_path / name))


def fresh_calls(run_dir) -> int:
    rows = [json.loads(x) for x in (run_dir / "calls.jsonl").read_text().splitlines()]
    return sum(not r["cached"] for r in rows)


def test_a_helpful_library_is_reported_improved_with_its_won_and_lost_counts(tmp_path):
    spec = task(tmp_path)
    lib = export(tmp_path, "lib.json", [HINT])
    res = compare_memories(
        spec, ["none", lib], out=tmp_path / "cmp", client=FunctionClient(answer), policy_options=OPTS
    )
    odd = sum(
        int(re.findall(r"\d+", q)[0]) % 2 for q in _questions(tmp_path / "cmp", res.conditions[0].label)
    )
    base, with_lib = res.conditions
    assert 0 < odd < 10 and base.verdict == "baseline" and base.vs_first is None
    assert base.score.mean_at_k == pytest.approx((10 - odd) / 10) and with_lib.score.mean_at_k == 1.0
    assert (with_lib.vs_first.wins, with_lib.vs_first.losses) == (odd, 0)
    assert with_lib.vs_first.diff == pytest.approx(odd / 10) and with_lib.verdict == "improved"
    assert with_lib.lessons == 1 and with_lib.memory_tokens > 0 and with_lib.placement == "system"
    # files: table with the verdict, one row per condition and item, the plot, the result
    table = (tmp_path / "cmp" / "table.md").read_text()
    assert "| improved |" in table and f"{odd} / 0" in table and "lib.json vs none" in table
    rows = [json.loads(x) for x in (tmp_path / "cmp" / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and sum(r["diff_vs_first"] > 0 for r in rows) == odd
    assert all(r["lessons"] == ["L0001"] for r in rows if r["condition"] == lib)
    assert (
        json.loads((tmp_path / "cmp" / "compare.json").read_text())["conditions"][1]["verdict"] == "improved"
    )
    if pytest.importorskip("matplotlib"):
        assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0


def _questions(folder, label):
    return [json.loads(x)["question"] for x in (folder / f"{label}.jsonl").read_text().splitlines()]


def test_none_against_none_is_exactly_zero_and_paid_once(tmp_path):
    res = compare_memories(
        task(tmp_path), ["none", "none"], out=tmp_path / "cmp", client=FunctionClient(answer)
    )
    a, b = res.conditions
    assert a.label != b.label and b.per_item == a.per_item
    d = b.vs_first
    assert (d.diff, d.lo, d.hi, d.wins, d.losses, d.p_mcnemar) == (0, 0, 0, 0, 0, 1.0)
    assert b.verdict == "no significant change"
    assert (a.paid.calls, a.paid.cached_calls) == (20, 0)  # 10 items × k=2, each sample its own seed
    assert (b.paid.calls, b.paid.cached_calls) == (0, 20)
    assert b.usage.total_tokens == a.usage.total_tokens > 0  # what its answers cost, though replayed


def test_an_answer_shared_between_conditions_is_paid_once(tmp_path):
    """An empty library injects nothing: its requests are `none`'s, answered from the shared cache."""
    spec, client = task(tmp_path), FunctionClient(answer)
    sources = ["none", export(tmp_path, "empty.json", []), export(tmp_path, "lib.json", [HINT])]
    res = compare_memories(spec, sources, out=tmp_path / "cmp", client=client, policy_options=OPTS)
    assert [c.paid.calls for c in res.conditions] == [20, 0, 20]
    assert fresh_calls(tmp_path / "cmp") == client.calls == 40
    assert res.conditions[1].verdict == "no significant change"
    # a rerun of the same comparison pays nothing and resumes every condition's answers
    again = compare_memories(spec, sources, out=tmp_path / "cmp", client=client, policy_options=OPTS)
    assert client.calls == 40 and [c.per_item for c in again.conditions] == [
        c.per_item for c in res.conditions
    ]


def test_bad_memory_source_and_task_file_name_the_value_and_the_fix(tmp_path):
    spec = task(tmp_path)
    with pytest.raises(ConfigError, match=r"--memory '.*nowhere'.*no memory at.*library export"):
        compare_memories(spec, ["none", str(tmp_path / "nowhere")], client=FunctionClient(answer))
    assert not (tmp_path / "runs").exists()  # nothing opened, nothing asked
    lib = export(tmp_path, "lib.json", [HINT])
    with pytest.raises(
        ConfigError, match=r"'.*lib.json' is a memory .* not a task file: pass it as --memory"
    ):
        load_compare_spec(lib)
    with pytest.raises(
        ConfigError, match=r"(?s)task file 'missing.yaml' not found.*task file first.*--memory"
    ):
        load_compare_spec("missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text('{"lessons": 3}')
    with pytest.raises(ConfigError, match=r"--memory '.*bad.json'"):
        compare_memories(spec, [str(bad)])


def test_cli_reports_a_bad_memory_source_without_a_traceback(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\ndata: {source: gsm_symbolic}\n")
    r = CliRunner().invoke(
        app, ["compare", str(tmp_path / "t.yaml"), "--memory", "none", "--memory", "runs/nope"]
    )
    assert r.exit_code == 2 and "runs/nope" in r.output and "run directory" in r.output
    assert "Traceback" not in r.output
