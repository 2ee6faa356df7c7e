"""The learning rules of the one curation path, each with the case that used to go wrong.

Rules: lessons may carry formulas but not their own question's numbers or names; a lesson that is not a rare
success can be deleted, and harm shown by paired evidence retires it; the cap holds when a DELETE is refused;
lessons that differ only in their condition both survive; without ground truth no learner prompt holds the
reference; a group whose rewards all agree never reaches the learner, on either entry point.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from memrl.algos.tfgrpo.advantage import _lessons_schema, hide_reference
from memrl.inject import LessonVectors
from memrl.library import Library, Op, Proposal, curate, reconcile
from memrl.library.controls import prune, sign_test
from memrl.llm.base import Request
from memrl.memory.embed import make_embedder
from memrl.metrics import has_advantage
from memrl.policy import MemoryPolicy
from memrl.runner import run_task
from memrl.spec import DiversitySpec, TFGRPOSpec, spec_from_mapping
from memrl.testing import FunctionClient, ScriptedLLM
from memrl.types import Verdict

FORMULA = r"When a price rises by p %, multiply by (1 + p/100); answer as \boxed{N}"
FALLS = r"When a price falls by p %, multiply by (1 - p/100); answer as \boxed{N}"
QUESTION = "A $40 jacket's price rises by 15% in March. Janet buys it. What does Janet pay?"


def curate_now(props, lib, learner=None, embedder="hash-64", tf=None, div=None):
    vectors = LessonVectors(make_embedder(embedder))
    return asyncio.run(curate(
        props, lib, tfgrpo=TFGRPOSpec(**(tf or {})), diversity=DiversitySpec(embedder=embedder, **(div or {})),
        vectors=vectors, learner=learner, step=lib.version + 1, salt="t",
    ))  # fmt: skip


def adds(*texts, question=QUESTION, successes=2, group=4, order=0):
    return Proposal(item_id=f"q{order}", order=order, sources=[f"s/q{order}#0"], question=question,
                    ops=[Op(op="ADD", content=t) for t in texts], successes=successes, group_size=group)  # fmt: skip


# ------------------------------------------------------------------ 1. formulas yes, copied specifics no


def test_the_default_lesson_format_admits_formulas_units_and_answer_formats():
    schema = _lessons_schema(TFGRPOSpec())["properties"]["lessons"]["items"]
    pattern = schema.get("pattern")
    assert pattern is None or re.search(pattern, FORMULA), "the default pattern bans the formula lesson"


def test_a_lesson_copying_its_questions_numbers_or_names_is_rejected_with_a_reason():
    lib = Library()
    copied_number = "When a jacket costing 40 dollars rises, multiply the price by 1.15"
    copied_name = "When Janet buys something on sale, compute the new price first"
    edits, rejected = reconcile([adds(FORMULA, copied_number, copied_name)], lib, TFGRPOSpec())
    assert [e.content for e in edits] == [FORMULA]
    reasons = {r.content: r.reason for r in rejected}
    assert "'40'" in reasons[copied_number] and "general" in reasons[copied_number]
    assert "'Janet'" in reasons[copied_name]


def test_the_tasks_own_vocabulary_is_not_a_copied_specific():
    """Every 4x4 sudoku question says "Sudoku" and "4": on 2026-12-07 that rejected 5 of the 11 lessons a
    mini_sudoku run proposed ("When solving a Sudoku, ..."). Terms most training questions share are the
    task's; one question's own names and numbers stay banned."""
    import reasoning_gym

    from memrl.library.specifics import task_terms

    sudoku = [x["question"] for x in reasoning_gym.create_dataset("mini_sudoku", size=8, seed=3)]
    terms = task_terms(sudoku)
    assert {"Sudoku", "4"} <= terms
    general = (
        "When solving a Sudoku, try each number from 1 to 4 in an empty cell and backtrack on a conflict"
    )
    _, rejected = reconcile([adds(general, question=sudoku[0])], Library(), TFGRPOSpec())
    assert "'Sudoku'" in rejected[0].reason, "without the task's terms the rule rejects the general lesson"
    edits, rejected = reconcile([adds(general, question=sudoku[0])], Library(), TFGRPOSpec(), terms)
    assert [e.content for e in edits] == [general] and rejected == []

    shop = [QUESTION, "A $25 hat costs 20% less in May. Omar buys two. What does Omar pay?",
            "A $60 coat is 10% off. Priya buys it. What does Priya pay?",
            "A $32 bag rises by 25%. Lena buys it. What does Lena pay?"]  # fmt: skip
    terms = task_terms(shop)
    assert not terms & {"Janet", "40", "15"}, terms
    copied = "When Janet buys something on sale, compute the new price first"
    _, rejected = reconcile([adds(copied)], Library(), TFGRPOSpec(), terms)
    assert "'Janet'" in rejected[0].reason
    assert task_terms(sudoku[:3]) == frozenset(), "too few questions to tell the task's vocabulary"


# ------------------------------------------------------------------ 2. wrong lessons can leave


def test_a_lesson_from_an_ordinary_group_of_two_can_be_deleted():
    lib = Library()
    # a group of 2 with one success: best − mean = 0.5, which used to count as a protected "rare success"
    curate_now([adds(FORMULA, successes=1, group=2)], lib)
    lesson = lib.active()[0]
    delete = Proposal(item_id="q9", order=0, sources=[], ops=[Op(op="DELETE", id=lesson.id)])
    res = curate_now([delete], lib)
    assert res.ops["DELETE"] == 1 and lib.get(lesson.id).status == "retired"


def test_a_rare_success_is_protected_and_the_cap_holds_when_its_delete_is_refused():
    lib = Library()
    curate_now([adds(FORMULA, successes=1, group=4)], lib, tf={"max_lessons": 1})  # 1 of 4: rare
    rare = lib.active()[0]
    assert rare.metadata["rare_success"] is True
    other = "When a quantity is split into equal parts, divide the total by the number of parts"
    res = curate_now([Proposal(item_id="q9", order=0, sources=[], question="", successes=2, group_size=4,
                               ops=[Op(op="DELETE", id=rare.id), Op(op="ADD", content=other)])],
                     lib, tf={"max_lessons": 1})  # fmt: skip
    reasons = [r.reason for r in res.rejected]
    assert any("rare success" in r for r in reasons) and any("cap of 1" in r for r in reasons)
    assert [x.id for x in lib.active()] == [rare.id], "the refused DELETE must not make room for the ADD"


def test_paired_harm_retires_a_lesson_by_default_but_a_handful_of_groups_does_not():
    lib = Library()
    bad = lib.add("When a sum is asked, add one to the total before answering", step=1)
    good = lib.add("When adding, check the units digit of the sum", step=1)
    cfg = DiversitySpec()
    # a hard task: most rollouts fail, with or without either lesson; only `bad` loses within groups
    shown = [[bad.id, good.id], [good.id], [bad.id, good.id], [good.id]]
    for _ in range(4):  # four losing groups: p = 1/16, not enough
        lib.count_contrast(shown, [0.0, 1.0, 0.0, 0.0])
    assert (lib.get(bad.id).losses, lib.get(bad.id).wins) == (4, 0)
    assert prune(lib, cfg, step=2) == []
    lib.count_contrast(shown, [0.0, 1.0, 0.0, 1.0])
    assert sign_test(5, 0) < 0.05
    assert prune(lib, cfg, step=3) == [bad.id]
    assert lib.get(good.id).status == "active" and lib.get(good.id).harmful == 0


# ------------------------------------------------------------------ 3. near but different lessons survive


def test_lessons_that_differ_only_in_their_condition_both_survive():
    lib = Library()
    curate_now([adds(FORMULA)], lib, embedder="minilm-l6-v2-int8")
    learner = ScriptedLLM(['{"verdicts": ["different"]}'])
    res = curate_now([adds(FALLS)], lib, learner=learner, embedder="minilm-l6-v2-int8")
    learner.assert_consumed()
    assert res.judged_pairs == 1, "the embedder must find the close pair and the learner judge it"
    assert sorted(lib.texts()) == sorted([FORMULA, FALLS])
    # the same call folds a paraphrase into the lesson it repeats
    para = r"When a price goes up by p %, multiply it by (1 + p/100); give the answer as \boxed{N}"
    learner = ScriptedLLM(['{"verdicts": ["same", "different"]}'])
    res = curate_now([adds(para)], lib, learner=learner, embedder="minilm-l6-v2-int8")
    assert res.judged_same == 1 and res.ops["SUPPORT"] == 1 and len(lib) == 2


def test_without_a_learner_or_a_usable_verdict_every_lesson_is_kept():
    lib = Library()
    curate_now([adds(FORMULA)], lib, embedder="minilm-l6-v2-int8")
    curate_now([adds(FALLS)], lib, learner=ScriptedLLM(default="not json"), embedder="minilm-l6-v2-int8")
    assert len(lib) == 2


# ------------------------------------------------------------------ 4–6. runs: reference, group rule


def sums_spec(tmp_path, **tf):
    data = tmp_path / "sums.jsonl"
    rows = [{"id": f"q{a}{b}", "question": f"What is {a} + {b}?", "answer": str(a + b)}
            for a in range(1, 7) for b in (a + 2, a + 4)]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {
        "name": "rules", "algorithm": "tfgrpo", "model": "local",
        "data": {"source": str(data), "test_size": 4, "seed": 1},
        "prompt": {"system": "You are a careful calculator."},
        "eval": {"k": 2, "max_tokens": 8},
        "tfgrpo": {"epochs": 1, "batch_size": 4, "group_size": 4, "steps_per_epoch": 2} | tf,
        "run": {"dir": str(tmp_path / "runs")},
        "diversity": {"embedder": "hash-64"},
    }  # fmt: skip
    return spec_from_mapping(raw, base_dir=tmp_path)


def sums_model(prompts: list[str]):
    def answer(req: Request, seed: int | None) -> str:
        user = req.messages[-1].content
        if req.json_schema or "Summarise" in user:
            prompts.append("\n".join(m.content for m in req.messages))
            if "Summarise" in user:
                return "The attempt added the numbers."
            props = req.json_schema.get("properties", {})
            if "lessons" in props:
                return json.dumps({"lessons": ["When adding, check the units digit of the sum"]})
            if "verdicts" in props:
                return json.dumps({"verdicts": ["different"] * user.count("Pair ")})
            return json.dumps({"operations": [{"op": "ADD", "content": t}
                                              for t in re.findall(r"^- (When .*)$", user, re.M)]})  # fmt: skip
        a, b = map(int, re.findall(r"\d+", user)[:2])
        return str(a + b if (seed or 0) % 2 == 0 else a + b + 1)

    return answer


def test_without_ground_truth_no_learner_prompt_holds_the_reference(tmp_path):
    assert hide_reference("expected 12, got 13", "12") == "expected [hidden], got 13"
    prompts: list[str] = []
    spec = sums_spec(tmp_path, given_ground_truth=False)
    run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(sums_model(prompts)))
    rows = {f"What is {a} + {b}?": str(a + b) for a in range(1, 7) for b in (a + 2, a + 4)}
    checked = 0
    for p in prompts:
        for question, ref in rows.items():
            if question in p and "Verdict: wrong" in p:  # a wrong attempt's text never holds the reference
                assert not re.search(rf"(?<![\w.]){ref}(?![\w])", p), p
                checked += 1
    assert checked, "the run must send wrong attempts to the learner for this test to mean anything"
    assert not any("Correct answer" in p for p in prompts)


def test_an_all_half_group_reaches_the_learner_on_neither_entry_point(tmp_path):
    assert not has_advantage([0.5, 0.5, 0.5, 0.5]) and has_advantage([0.5, 0.0])

    class Half:
        async def verify(self, item, answer):
            return Verdict(reward=0.5, correct=False, reason="half credit", extracted=answer.strip())

    prompts: list[str] = []

    def setup(ctx):
        ctx.verifier = Half()

    res = run_task(sums_spec(tmp_path), run_dir=tmp_path / "r", client=FunctionClient(sums_model(prompts)),
                   setup=setup)  # fmt: skip
    assert res.status == "finished" and prompts == [], "an all-0.5 group reached the tfgrpo learner"

    learner = ScriptedLLM([])  # any call fails the test
    policy = MemoryPolicy(Library(), learner=learner)
    for _ in range(3):
        policy.record("What is 2 + 2?", "4", 0.5)
    assert policy.learn().learned_groups == 0 and learner.requests == []


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))


def test_a_copy_of_the_learners_own_format_example_is_not_a_lesson():
    """SmolLM2-135M answered '<the new lesson, in full>' and '...' once the lesson pattern stopped forcing text."""
    from memrl.algos.tfgrpo.advantage import _instructions, echoes_instructions

    fixed = _instructions("tfgrpo_propose", library=[], lessons=[], max_ops=3, word_cap=32)
    assert echoes_instructions("<the new lesson, in full>", fixed)
    assert echoes_instructions("The new lesson, in full", fixed) and echoes_instructions("...", fixed)
    assert not echoes_instructions(FORMULA, fixed)


def test_a_text_about_the_lesson_itself_is_rejected():
    """What SmolLM2-135M wrote as lessons in the 2026-12-06 ablation, and what a real lesson looks like."""
    from memrl.library.specifics import talks_about_itself

    for junk in ("The new lesson is incomplete. The previous one was incomplete.",
                 "This text has been updated to include the improved lesson.",
                 "The improved lesson refines the original text, which has been updated"):  # fmt: skip
        assert talks_about_itself(junk), junk
    assert not talks_about_itself(FORMULA)
    assert not talks_about_itself("When a text asks for a date, answer in ISO format")
    edits, rejected = reconcile(
        [adds("The new lesson is a great example of logical thinking")], Library(), TFGRPOSpec()
    )
    assert edits == [] and "not about the task" in rejected[0].reason


def test_the_learners_fixed_instructions_are_rendered_once_and_unchanged():
    from memrl.algos.tfgrpo.advantage import (
        _extract_instructions,
        _instructions,
        _padded_words,
        _propose_instructions,
        echoes_instructions,
    )

    extract = _instructions("tfgrpo_extract", question="", ground_truth=None, attempts=[], library=[],
                            max_lessons=2, word_cap=40)  # fmt: skip
    propose = _instructions("tfgrpo_propose", library=[], lessons=[], max_ops=3, word_cap=40)
    assert _extract_instructions(2, 40) == extract and _propose_instructions(3, 40) == propose
    assert _extract_instructions(2, 40) is _extract_instructions(2, 40), "rendered once per limits"
    assert _extract_instructions(3, 40) != extract, "the limits are part of the key"
    hits = _padded_words.cache_info().hits
    assert echoes_instructions("<the new lesson, in full>", propose)
    assert echoes_instructions("The new lesson, in full", propose)
    assert not echoes_instructions(FORMULA, propose)
    assert _padded_words.cache_info().hits >= hits + 2, "the prompt's words are normalised once"


def test_failure_lessons_add_one_instruction_and_leave_the_default_prompt_byte_identical():
    from memrl.algos.tfgrpo.advantage import _extract_instructions, _instructions

    base = _instructions("tfgrpo_extract", question="", ground_truth=None, attempts=[], library=[],
                         max_lessons=2, word_cap=32)  # fmt: skip
    assert _extract_instructions(2, 32) == base  # off: the prompt every earlier run and cache saw
    on = _extract_instructions(2, 32, True)
    assert "avoid <mistake>" in on and "avoid <mistake>" not in base
