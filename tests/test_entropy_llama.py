"""Teacher-forced entropy under the bundled SmolLM2 GGUF through llama-cpp-python (skipped without it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("llama_cpp")

from memrl.entropy.llama import LlamaEntropyScorer, chatml  # noqa: E402
from memrl.entropy.scoring import forking_tokens, group_entropy  # noqa: E402
from memrl.errors import LocalModelError  # noqa: E402
from memrl.types import Message  # noqa: E402

pytestmark = pytest.mark.local_model

PROMPT = [Message.system("Answer with one number."), Message.user("What is 17 + 25?")]
COMPLETIONS = ["The answer is 42.", "17 + 25 = 43, so the answer is 43. Voilà, 日本."]


@pytest.fixture(scope="module")
def scorer() -> LlamaEntropyScorer:
    try:
        return LlamaEntropyScorer(n_ctx=512)
    except LocalModelError as exc:  # llama_cpp present but the bundled GGUF is not
        pytest.skip(str(exc))


def test_entropies_are_valid_distributions_entropies(scorer: LlamaEntropyScorer) -> None:
    group = scorer.score_group(PROMPT, COMPLETIONS)
    ln_v = math.log(scorer.n_vocab)
    for text, sc in zip(COMPLETIONS, group, strict=True):
        assert sc.n_tokens == len(sc.tokens) == len(sc.entropies) == len(sc.logprobs) > 3
        h = np.array(sc.entropies)
        assert np.isfinite(h).all() and (h >= 0).all() and (h <= ln_v + 1e-9).all()
        lp = np.array(sc.logprobs)
        assert np.isfinite(lp).all() and (lp <= 1e-9).all()
        assert "".join(sc.tokens) == text  # token texts, multi-byte characters included
        assert sc.prompt_tokens == len(scorer.tokenize_prompt(PROMPT))
    assert 0 < group_entropy(group) < ln_v
    tau, forks = forking_tokens(group)
    assert forks and all(f.entropy >= tau for f in forks)


def test_rescoring_is_deterministic(scorer: LlamaEntropyScorer) -> None:
    first = scorer.score(PROMPT, COMPLETIONS[1])
    scorer.llm.reset()  # from a cold context too
    again = scorer.score(PROMPT, COMPLETIONS[1])
    assert again.entropies == pytest.approx(first.entropies, abs=1e-9)
    assert again.logprobs == pytest.approx(first.logprobs, abs=1e-9)


def test_group_with_prompt_once_equals_separate_scoring(scorer: LlamaEntropyScorer) -> None:
    group = scorer.score_group(PROMPT, COMPLETIONS)
    separate = []
    for text in reversed(COMPLETIONS):  # longer one first: the rewind must drop it from the KV cache
        scorer.llm.reset()
        separate.append(scorer.score(PROMPT, text))
    for g, s in zip(group, reversed(separate), strict=True):
        assert g.token_ids == s.token_ids
        assert np.allclose(g.entropies, s.entropies, atol=1e-4)
        assert np.allclose(g.logprobs, s.logprobs, atol=1e-4)


def test_shared_prefix_reuse_matches_a_fresh_eval(scorer: LlamaEntropyScorer) -> None:
    other = [PROMPT[0], Message.user("What is 18 + 25?")]
    scorer.score(PROMPT, COMPLETIONS[0])  # leaves PROMPT in the context; `other` shares its prefix
    reused = scorer.score(other, COMPLETIONS[0])
    scorer.llm.reset()
    fresh = scorer.score(other, COMPLETIONS[0])
    assert np.allclose(reused.entropies, fresh.entropies, atol=1e-4)


def test_full_sequence_eval_agrees_with_raw_llama(scorer: LlamaEntropyScorer) -> None:
    from memrl.entropy import token_entropy

    sc = scorer.score(PROMPT, COMPLETIONS[0])
    p = scorer.tokenize_prompt(PROMPT)
    scorer.llm.reset()
    scorer.llm.eval(p + sc.token_ids)
    raw = token_entropy(scorer.llm.scores[len(p) - 1 : len(p) - 1 + sc.n_tokens])
    assert np.allclose(raw, sc.entropies, atol=1e-4)


def test_prompt_formats_and_edges(scorer: LlamaEntropyScorer) -> None:
    text = scorer.format_prompt(PROMPT)
    assert text.endswith("<|im_start|>assistant\n") and "What is 17 + 25?" in text
    assert scorer.format_prompt([{"role": "user", "content": "hi"}]).endswith("<|im_start|>assistant\n")
    assert (
        chatml([{"role": "user", "content": "hi"}])
        == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    raw = scorer.score("Question: 2 + 2 =", " 4")
    assert raw.n_tokens >= 1
    assert scorer.score(PROMPT, "").n_tokens == 0
    with pytest.raises(ValueError, match="n_ctx"):
        scorer.score(PROMPT, "word " * 600)
    cooler = LlamaEntropyScorer(llm=scorer.llm, temperature=0.5)
    assert (
        cooler.score(PROMPT, COMPLETIONS[0]).mean_entropy < scorer.score(PROMPT, COMPLETIONS[0]).mean_entropy
    )
