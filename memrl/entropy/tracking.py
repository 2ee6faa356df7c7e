"""Entropy of a learning run under a local open-weight model.

- `token_entropy`: each group's rollouts scored teacher-forced under the prompt they were sampled with
  (library included), aggregated seq-mean-token-mean (or token-mean).
- `lesson_kl`: how much a lesson sharpens the policy — the mean over a rollout's tokens of
  KL(p_with ‖ p_without) between the local model's next-token distributions with the lesson in the prompt
  and without it, averaged over a sample of prompts.
- `api_entropy_bounds`: bounds on the per-token entropy from a provider's top-k logprobs.

Hosted APIs do not expose full distributions, so the local model stands in for the policy: the numbers
describe the prompts' effect on that model, which is exact when the policy is the local model itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memrl.entropy.measures import log_softmax, policy_entropy
from memrl.entropy.topk import topk_entropy_bounds_from_logprobs
from memrl.types import Message, Rollout

__all__ = ["token_entropy", "lesson_kl", "api_entropy_bounds", "open_scorer"]


def open_scorer(model: str = "local", n_ctx: int = 2048) -> Any:
    """A teacher-forcing scorer for `local` (the bundled GGUF) or `local:/path.gguf` / a plain path."""
    from memrl.entropy.llama import LlamaEntropyScorer

    path = None if model == "local" else model.removeprefix("local:")
    return LlamaEntropyScorer(path, n_ctx=n_ctx)


def _key(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, m.content) for m in messages)


def token_entropy(
    scorer: Any, groups: Sequence[Sequence[Rollout]], aggregation: str = "seq-mean-token-mean"
) -> list[float]:
    """Policy entropy of each group's rollouts (rollouts sharing a prompt are scored with it evaluated once)."""
    out = []
    for g in groups:
        by_prompt: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for r in g:
            by_prompt.setdefault(_key(r.messages), []).append(r.completion.text)
        rows: list[list[float]] = []
        for key, texts in by_prompt.items():
            msgs = [{"role": role, "content": content} for role, content in key]
            rows += [s.entropies for s in scorer.score_group(msgs, texts) if s.entropies]
        out.append(policy_entropy(rows, aggregation=aggregation) if rows else 0.0)  # type: ignore[arg-type]
    return out


def _logprob_rows(scorer: Any, messages: Sequence[Message], completion_ids: list[int]) -> np.ndarray:
    msgs = [{"role": m.role, "content": m.content} for m in messages]
    prompt_ids = scorer.tokenize_prompt(msgs)
    scorer.score_tokens(prompt_ids, [completion_ids])
    p = len(prompt_ids)
    rows = np.array(scorer.llm.scores[p - 1 : p - 1 + max(1, len(completion_ids))], dtype=np.float64)
    return np.asarray(log_softmax(rows))


def lesson_kl(scorer: Any, pairs: Sequence[tuple[Sequence[Message], Sequence[Message], str]]) -> float:
    """Mean per-token KL(with ‖ without) over (messages with the lesson, messages without it, completion)."""
    kls = []
    for with_msgs, without_msgs, completion in pairs:
        ids = scorer.tokenize_completion(completion)[:256]
        a = _logprob_rows(scorer, with_msgs, ids)
        b = _logprob_rows(scorer, without_msgs, ids)
        kl = np.sum(np.exp(a) * (a - b), axis=-1)
        kls.append(float(np.mean(np.maximum(kl, 0.0))))
    return float(np.mean(kls)) if kls else 0.0


def api_entropy_bounds(rollouts: Sequence[Rollout]) -> dict[str, float] | None:
    """Mean per-token entropy bounds from top-k logprobs, when the provider returned them."""
    lower, upper, top = [], [], []
    for r in rollouts:
        for t in r.completion.logprobs or []:
            if t.top:
                b = topk_entropy_bounds_from_logprobs(t.top)
                lower.append(b.h_lower)
                top.append(b.h_top)
                if np.isfinite(b.h_upper):
                    upper.append(b.h_upper)
    if not lower:
        return None
    out = {"api_entropy_top": float(np.mean(top)), "api_entropy_lower": float(np.mean(lower))}
    if upper:
        out["api_entropy_upper"] = float(np.mean(upper))
    return out
