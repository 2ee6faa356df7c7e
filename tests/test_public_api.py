"""The public surface: an explicit __all__, and every prompt file loads and renders."""

from __future__ import annotations

import memrl
from memrl.prompts import load_prompt, prompt_names

EXPECTED = {
    "BudgetExceeded", "Completion", "ConfigError", "Item", "MemrlError", "Message", "ProviderError",
    "Rollout", "TaskSpec", "Usage", "Verdict", "__version__", "load_spec",
}  # fmt: skip


def test_all_is_explicit_and_importable():
    assert set(memrl.__all__) >= EXPECTED, "a public name disappeared"
    for name in memrl.__all__:
        assert hasattr(memrl, name), f"memrl.__all__ names {name} but memrl does not define it"


SAMPLE = {
    "question": "What is 2 + 3?",
    "answer": "5",
    "reference": "5",
    "correct": True,
    "reason": "",
    "max_words": 40,
    "ground_truth": "5",
    "attempts": [{"reward": 1.0, "summary": "added"}],
    "library": [{"id": "L0001", "text": "When adding, carry"}],
    "lessons": ["When adding, carry"],
    "cases": [],
    "max_lessons": 2,
    "max_ops": 3,
    "word_cap": 32,
}


def test_every_prompt_loads_and_renders():
    names = prompt_names()
    assert {"memory_block", "tfgrpo_summarize", "tfgrpo_extract", "tfgrpo_propose"} <= set(names)
    for name in names:
        p = load_prompt(name)
        assert p.system or p.user, name
        variables = dict(SAMPLE)
        variables.update(p.meta.get("example", {}))
        for part in ("system", "user"):
            if getattr(p, part):
                text = p.text(part, **variables)
                assert text.strip(), f"{name}.{part} rendered empty"


def test_memory_policy_keeps_its_methods():
    from memrl.policy import MemoryPolicy

    for name in ("load", "memory", "amemory", "augment", "aaugment", "preload", "apreload", "record",
                 "arecord", "learn", "alearn", "export", "save", "close"):  # fmt: skip
        assert callable(getattr(MemoryPolicy, name, None)), f"MemoryPolicy.{name} disappeared"
