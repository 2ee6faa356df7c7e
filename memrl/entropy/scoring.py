"""Teacher-forced scoring results, shared by every local backend, and the maths from logits to them.

A backend (``memrl.entropy.llama``; a transformers one can follow the same Protocol) scores given
(prompt, completion) pairs: for every completion token, the entropy of the model's predictive distribution
at that position and the log-probability of the token that was actually there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from memrl.entropy.measures import Aggregation, forking_mask, policy_entropy
from memrl.types import Message

__all__ = [
    "Prompt",
    "ScoredCompletion",
    "ForkingToken",
    "TokenScorer",
    "entropy_and_logprob",
    "group_entropy",
    "forking_tokens",
]

#: A prompt is raw text (scored exactly as given) or chat messages (rendered with the model's chat template).
Prompt = str | Sequence[Message] | Sequence[dict[str, str]]


class ScoredCompletion(BaseModel):
    """Per-token scores of one completion, teacher-forced after its prompt (nats)."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int
    token_ids: list[int]
    tokens: list[str]
    entropies: list[float]
    logprobs: list[float]

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_entropy(self) -> float:
        """Mean token entropy (nan for an empty completion)."""
        return float(np.mean(self.entropies)) if self.entropies else math.nan

    @property
    def sum_logprob(self) -> float:
        return float(sum(self.logprobs))

    @property
    def mean_logprob(self) -> float:
        """Mean token log-likelihood ℓ̄, the weight semantic entropy uses (nan for an empty completion)."""
        return float(np.mean(self.logprobs)) if self.logprobs else math.nan


class ForkingToken(BaseModel):
    """A high-entropy token: which completion, where in it, what it was, and its entropy."""

    model_config = ConfigDict(frozen=True)

    completion: int
    position: int
    token: str
    entropy: float


class TokenScorer(Protocol):
    """What an entropy backend offers: score the G completions of one prompt, the prompt evaluated once."""

    def score_group(self, prompt: Prompt, completions: Sequence[str]) -> list[ScoredCompletion]: ...


def entropy_and_logprob(
    logits: ArrayLike, token_ids: ArrayLike, temperature: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Entropy of softmax(z/T) per row, and log-probability of ``token_ids[i]`` under row i (one exp pass)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    ids = np.asarray(token_ids, dtype=np.intp).ravel()
    if z.ndim != 2 or z.shape[0] != ids.size:
        raise ValueError(f"need one logits row per token: logits {z.shape}, {ids.size} tokens")
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1)
    log_total = np.log(total)
    entropy = np.maximum(log_total - np.einsum("ij,ij->i", e, z) / total, 0.0)
    logprob = z[np.arange(ids.size), ids] - log_total
    return entropy, logprob


def group_entropy(
    scored: Sequence[ScoredCompletion], aggregation: Aggregation = "seq-mean-token-mean"
) -> float:
    """Policy entropy of a group of scored completions (seq-mean-token-mean by default)."""
    return policy_entropy([s.entropies for s in scored], aggregation=aggregation)


def forking_tokens(scored: Sequence[ScoredCompletion], rho: float = 0.2) -> tuple[float, list[ForkingToken]]:
    """τ and the tokens of the group whose entropy is in the top-ρ quantile (``H_t ≥ τ``), in order."""
    rows = [s.entropies for s in scored]
    tau, masks = forking_mask(rows, rho=rho)
    out = [
        ForkingToken(completion=c, position=int(i), token=scored[c].tokens[i], entropy=scored[c].entropies[i])
        for c, mask in enumerate(masks)
        for i in np.flatnonzero(mask)
    ]
    return tau, out
