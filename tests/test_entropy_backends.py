"""The llama.cpp and transformers backends agree within 0.15 nats/token on the same texts (when both exist)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import needs_local

pytestmark = [
    needs_local,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf")),
        reason="the transformers backend is not installed (torch, transformers, gguf, accelerate)",
    ),
]

PROMPT = "Question: What is 7 + 5?\nAnswer:"
COMPLETIONS = [
    " 12",
    " The sum of seven and five is twelve.",
    " I think it is 13, because 7 + 5 = 13.",
    " To add 7 and 5, start at 7 and count up five steps: 8, 9, 10, 11, 12. So the answer is 12.",
]


def test_llama_cpp_and_transformers_agree_per_token():
    """Mean absolute per-token entropy difference over all the texts ≤ 0.15 nats/token, and for each text of
    8+ tokens. (Very short texts are dominated by the first answer token, where the two runtimes' Q4
    arithmetic differs most: 0.17 nats on the 3-token answer here.)"""
    import numpy as np

    from memrl.entropy.hf import TransformersEntropyScorer
    from memrl.entropy.llama import LlamaEntropyScorer

    a = LlamaEntropyScorer().score_group(PROMPT, COMPLETIONS)
    b = TransformersEntropyScorer().score_group(PROMPT, COMPLETIONS)
    gaps = []
    for x, y in zip(a, b, strict=True):
        assert x.token_ids == y.token_ids, "both backends must score the same tokens"
        d = np.abs(np.array(x.entropies) - np.array(y.entropies))
        print(
            f"\n{len(d)} tokens: {x.mean_entropy:.4f} vs {y.mean_entropy:.4f} nats, mean |gap| {d.mean():.4f}"
        )
        if len(d) >= 8:
            assert d.mean() <= 0.15
        gaps.append(d)
    pooled = float(np.concatenate(gaps).mean())
    print(f"pooled mean |gap| over {sum(map(len, gaps))} tokens: {pooled:.4f} nats/token")
    assert pooled <= 0.15
