"""The GEPA peer against a scripted chat: it must improve the prompt, keep to the budget, survive garbage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("gepa")

from bench.peers import gepa_peer  # noqa: E402
from bench.peers.base import PeerContext  # noqa: E402
from memrl.types import Item  # noqa: E402

SEED = "You are a careful problem solver."
GOOD = "Solve the problem step by step and put the final answer in \\boxed{}."
REFLECTION_MARK = "I provided an assistant with the following instructions"


class FakeChat:
    """Task calls answer right only when the system prompt says "boxed"; reflection replies are scripted."""

    def __init__(self, reflect=lambda prompt: f"Better:\n```\n{GOOD}\n```", fail_tasks: bool = False) -> None:
        self.reflect, self.fail_tasks = reflect, fail_tasks
        self.task_calls: list[list[dict[str, str]]] = []
        self.reflection_calls: list[str] = []

    def __call__(
        self, messages: list[dict[str, str]], temperature: float, max_tokens: int
    ) -> tuple[str, int, int]:
        last = messages[-1]["content"]
        if REFLECTION_MARK in last:
            assert temperature == gepa_peer.REFLECT_TEMPERATURE and max_tokens == gepa_peer.REFLECT_MAX_TOKENS
            self.reflection_calls.append(last)
            return self.reflect(last), 100, 20
        self.task_calls.append(messages)
        if self.fail_tasks:
            raise ConnectionError("server gone")
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        a, b = map(int, re.findall(r"(\d+)\+(\d+)", last)[0])
        return (f"\\boxed{{{a + b}}}" if "boxed" in system else f"I think it is {a + b + 1}."), 10, 5


def score(item: Item, text: str) -> float:
    return 1.0 if f"\\boxed{{{item.answer}}}" in text else 0.0


def items(n: int = 20) -> list[Item]:
    return [Item(id=f"q{i}", question=f"What is {i}+{i + 1} =", answer=str(2 * i + 1)) for i in range(n)]


def ctx(tmp_path: Path, chat: FakeChat, budget: int = 40, seed: int = 0) -> PeerContext:
    return PeerContext(
        train=items(),
        system=SEED,
        template="Question: {{ question }}",
        score=score,
        chat=chat,
        api_base="http://127.0.0.1:1/v1",
        model_alias="fake",
        budget_rollouts=budget,
        max_tokens=64,
        temperature=0.0,
        workdir=tmp_path,
        seed=seed,
    )


def test_split_is_disjoint_deterministic_and_sized_from_budget():
    train, val = gepa_peer.split(items(40), budget=200, seed=3)
    assert len(val) == 20 and len(train) == 20  # 200 // 8 = 25, capped at half of 40
    assert not {i.id for i in train} & {i.id for i in val}
    assert gepa_peer.split(items(40), 200, 3) == (train, val)
    assert gepa_peer.split(items(40), 200, 4) != (train, val)
    assert len(gepa_peer.split(items(40), 40, 0)[1]) == 8


def test_gepa_improves_the_prompt_within_budget(tmp_path):
    chat = FakeChat()
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=40))

    assert "boxed" in res.system and res.system == GOOD
    assert res.template == "Question: {{ question }}"
    assert res.rollouts == len(chat.task_calls) <= 40
    assert res.calls == len(chat.task_calls) + len(chat.reflection_calls)
    assert res.prompt_tokens == 10 * len(chat.task_calls) + 100 * len(chat.reflection_calls)
    assert res.completion_tokens == 5 * len(chat.task_calls) + 20 * len(chat.reflection_calls)
    d = res.detail
    assert d["seed_val_score"] == 0.0 and d["best_val_score"] == 1.0 and d["candidates"] >= 2
    assert not d["fallback_to_seed"] and d["reflections"] == len(chat.reflection_calls) >= 1
    # Task calls are the bench's own messages: the system prompt, then the rendered template.
    assert chat.task_calls[0] == [
        {"role": "system", "content": SEED},
        {"role": "user", "content": chat.task_calls[0][1]["content"]},
    ]
    assert chat.task_calls[0][1]["content"].startswith("Question: What is ")
    # The reflection saw the question, the answer, the reference and the verdict.
    first = chat.reflection_calls[0]
    assert SEED in first and "I think it is" in first and "The answer is wrong" in first
    assert "The reference answer is" in first


def test_budget_is_a_hard_limit_when_nothing_improves(tmp_path):
    chat = FakeChat(reflect=lambda p: "```\nThink harder, friend.\n```")
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=30))
    assert res.system == SEED
    assert res.rollouts == len(chat.task_calls) <= 30
    # GEPA stops before an iteration that could not validate a new candidate, so the adapter's hard
    # limit never has to cut one short: 8 (seed on the valset) + 2 iterations x (3 parent + 3 child).
    assert res.rollouts == 20 and not res.detail["exhausted"]
    assert res.detail["budget_unspent"] < 2 * gepa_peer.MINIBATCH + res.detail["n_val"]
    assert len(chat.reflection_calls) >= 2


@pytest.mark.parametrize(
    ("reply", "skipped"),
    [
        ("", True),
        ("```", True),
        ("```\n\n```", True),
        (f"```\n{SEED}\n```", True),  # unchanged
        ("```\n{{ undefined_var }} oops\n```", True),  # would not render in the bench
        ("```\nx {% if\n```", True),
        ("asdf ### ??? no fences at all", False),  # GEPA takes the whole reply; it just scores worse
    ],
)
def test_garbage_reflection_does_not_crash(tmp_path, reply, skipped):
    chat = FakeChat(reflect=lambda p: reply)
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=30))
    d = res.detail
    assert res.system == SEED and not d["fallback_to_seed"]
    assert res.rollouts == len(chat.task_calls) <= 30 and d["reflections"] == len(chat.reflection_calls) >= 1
    assert d["rollout_errors"] == 0
    if skipped:  # no rollouts spent on a proposal that was never a prompt
        assert d["reflections_skipped"] == d["reflections"]
        assert all(m[0]["content"] == SEED for m in chat.task_calls)
    else:
        assert d["reflections_unfenced"] == d["reflections"] and d["reflections_skipped"] == 0
        assert any(m[0]["content"] == reply for m in chat.task_calls)


def test_adapter_refuses_a_batch_that_would_pass_the_budget(tmp_path):
    chat = FakeChat()
    ledger = gepa_peer.Ledger(rollouts=8)
    adapter = gepa_peer.Adapter(ctx(tmp_path, chat), budget=10, ledger=ledger)
    with pytest.raises(gepa_peer.BudgetSpent):
        adapter.evaluate(items(3), {gepa_peer.COMPONENT: SEED})
    assert ledger.exhausted and ledger.rollouts == 8 and not chat.task_calls
    out = adapter.evaluate(items(2), {gepa_peer.COMPONENT: GOOD}, capture_traces=True)
    assert out.scores == [1.0, 1.0] and len(out.trajectories) == 2 and ledger.rollouts == 10


def test_reflection_that_raises_is_counted_and_skipped(tmp_path):
    def boom(prompt: str) -> str:
        raise TimeoutError("reflection timed out")

    chat = FakeChat(reflect=boom)
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=30))
    assert res.system == SEED and res.detail["reflection_errors"] >= 1
    assert res.rollouts <= 30


def test_failed_rollouts_score_zero_and_the_seed_survives(tmp_path):
    chat = FakeChat(fail_tasks=True)
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=30))
    assert res.system == SEED and res.detail["rollout_errors"] == res.rollouts > 0


def test_gepa_crash_falls_back_to_the_seed(tmp_path, monkeypatch):
    import gepa

    def crash(**kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(gepa, "optimize", crash)
    res = gepa_peer.learn(ctx(tmp_path, FakeChat(), budget=40))
    assert res.system == SEED and res.detail["fallback_to_seed"]
    assert "engine exploded" in res.detail["error"]


def test_budget_too_small_returns_the_seed_without_calls(tmp_path):
    chat = FakeChat()
    res = gepa_peer.learn(ctx(tmp_path, chat, budget=5))
    assert res.system == SEED and res.rollouts == 0 and not chat.task_calls


def test_resume_from_run_dir_repeats_no_work_and_keeps_the_totals(tmp_path):
    first = gepa_peer.learn(ctx(tmp_path, FakeChat(), budget=40))
    chat = FakeChat()
    again = gepa_peer.learn(ctx(tmp_path, chat, budget=40))
    assert again.system == first.system
    assert (again.rollouts, again.calls, again.prompt_tokens) == (
        first.rollouts,
        first.calls,
        first.prompt_tokens,
    )
    assert again.seconds >= 0.5 * first.seconds  # learning time carried over from the first run
    # Only GEPA's seed evaluation runs again before it loads its saved state; no reflection.
    assert len(chat.task_calls) == first.detail["n_val"] and not chat.reflection_calls


class Killed(BaseException):
    """Like SIGINT in the middle of a bench: not an Exception, so nothing on the way catches it."""


def test_a_run_killed_midway_resumes_to_the_same_result_and_totals(tmp_path):
    whole = gepa_peer.learn(ctx(tmp_path / "whole", FakeChat(), budget=60))

    class Dying(FakeChat):
        def __call__(self, messages, temperature, max_tokens):
            if len(self.task_calls) == 23:  # inside GEPA's third iteration
                raise Killed
            return super().__call__(messages, temperature, max_tokens)

    with pytest.raises(Killed):
        gepa_peer.learn(ctx(tmp_path / "killed", Dying(), budget=60))
    chat = FakeChat()
    resumed = gepa_peer.learn(ctx(tmp_path / "killed", chat, budget=60))
    # It went on from the state saved before the third iteration (8 seed + 3 + 3 + 8 rollouts), after
    # GEPA's usual repeat of the seed evaluation; the one reflection was not made again.
    assert len(chat.task_calls) == 8 + whole.rollouts - 22 and not chat.reflection_calls
    assert resumed.system == whole.system == GOOD
    assert (resumed.rollouts, resumed.calls, resumed.prompt_tokens, resumed.completion_tokens) == (
        whole.rollouts,
        whole.calls,
        whole.prompt_tokens,
        whole.completion_tokens,
    )
    assert resumed.detail["val_scores"] == whole.detail["val_scores"]


def test_runs_are_deterministic_in_the_seed(tmp_path):
    a = gepa_peer.learn(ctx(tmp_path / "a", FakeChat(), budget=40))
    b = gepa_peer.learn(ctx(tmp_path / "b", FakeChat(), budget=40))
    assert (a.system, a.rollouts, a.calls, a.detail["val_scores"]) == (
        b.system,
        b.rollouts,
        b.calls,
        b.detail["val_scores"],
    )
