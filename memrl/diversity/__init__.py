"""Diversity of sets of outputs and lessons: Vendi score, redundancy, distinct-n, pass@k, and the
selection of a relevant yet diverse subset (greedy DPP MAP, MMR)."""

from memrl.diversity.measures import cosine_similarity, distinct_n, pass_at_k, redundancy, redundant_pairs
from memrl.diversity.select import dpp_kernel, dpp_log_det, greedy_dpp_map, mmr_select
from memrl.diversity.vendi import vendi_from_eigenvalues, vendi_score, vendi_score_from_embeddings

__all__ = [
    "cosine_similarity",
    "distinct_n",
    "dpp_kernel",
    "dpp_log_det",
    "greedy_dpp_map",
    "mmr_select",
    "pass_at_k",
    "redundancy",
    "redundant_pairs",
    "vendi_from_eigenvalues",
    "vendi_score",
    "vendi_score_from_embeddings",
]
