"""Entropy measurement: token entropy from logits, forking tokens, semantic and answer entropy, the
entropy → reward law, top-k bounds from APIs, and teacher-forced scoring under a local GGUF
(``LlamaEntropyScorer``; llama-cpp-python, the ``[local]`` extra, is imported only when one is created)."""

from memrl.entropy.llama import LlamaEntropyScorer
from memrl.entropy.measures import (
    Aggregation,
    EntropyRewardFit,
    discrete_semantic_entropy,
    fit_entropy_reward_law,
    forking_mask,
    forking_threshold,
    log_softmax,
    miller_madow_entropy,
    plugin_entropy,
    policy_entropy,
    semantic_entropy,
    seq_mean_token_mean,
    token_entropy,
    token_mean,
)
from memrl.entropy.scoring import (
    ForkingToken,
    ScoredCompletion,
    TokenScorer,
    entropy_and_logprob,
    forking_tokens,
    group_entropy,
)
from memrl.entropy.topk import TopKEntropyBounds, topk_entropy_bounds, topk_entropy_bounds_from_logprobs

__all__ = [
    "Aggregation",
    "EntropyRewardFit",
    "ForkingToken",
    "LlamaEntropyScorer",
    "ScoredCompletion",
    "TokenScorer",
    "entropy_and_logprob",
    "forking_tokens",
    "group_entropy",
    "TopKEntropyBounds",
    "discrete_semantic_entropy",
    "fit_entropy_reward_law",
    "forking_mask",
    "forking_threshold",
    "log_softmax",
    "miller_madow_entropy",
    "plugin_entropy",
    "policy_entropy",
    "semantic_entropy",
    "seq_mean_token_mean",
    "token_entropy",
    "token_mean",
    "topk_entropy_bounds",
    "topk_entropy_bounds_from_logprobs",
]
