"""Every diversity vector of reference/ENTROPY.md (V1, V2 incl. q=2, I3, all-ones, D1, P2, P3), plus edges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memrl.diversity import (
    cosine_similarity,
    distinct_n,
    dpp_log_det,
    greedy_dpp_map,
    mmr_select,
    pass_at_k,
    redundancy,
    redundant_pairs,
    vendi_score,
    vendi_score_from_embeddings,
)

TOL = 1e-9
V1 = [[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]]
V2 = [[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]]


def test_v1_v2_vendi() -> None:
    assert vendi_score(V1) == pytest.approx(2.1573004834, abs=TOL)
    assert vendi_score(V2) == pytest.approx(2.6504535108, abs=TOL)
    assert vendi_score(V2, q=2) == pytest.approx(2.3936170213, abs=TOL)


def test_vendi_identity_and_all_ones() -> None:
    assert vendi_score(np.eye(3)) == pytest.approx(3.0, abs=TOL)
    assert vendi_score(np.ones((3, 3))) == pytest.approx(1.0, abs=TOL)
    for q in (0.0, 0.5, 2.0, float("inf")):
        assert vendi_score(np.eye(3), q=q) == pytest.approx(3.0, abs=TOL)
        assert vendi_score(np.ones((3, 3)), q=q) == pytest.approx(1.0, abs=TOL)


def test_vendi_from_embeddings_both_paths_agree() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4))  # n > d: the d×d path
    direct = vendi_score(cosine_similarity(x))
    assert vendi_score_from_embeddings(x) == pytest.approx(direct, abs=1e-9)
    assert vendi_score_from_embeddings(x[:3]) == pytest.approx(
        vendi_score(cosine_similarity(x[:3])), abs=1e-12
    )
    assert 1.0 <= direct <= 12.0
    with pytest.raises(ValueError):
        vendi_score([[1, 0.5], [0.1, 1]])
    with pytest.raises(ValueError):
        vendi_score_from_embeddings(np.zeros((5, 2)))


D1_X = np.array([[1, 0, 0], [0.96, 0.28, 0], [0, 1, 0], [0, 0.6, 0.8], [0.6, 0, 0.8]])
D1_S = D1_X @ D1_X.T
D1_Q = np.array([1.0, 0.99, 0.9, 0.8, 0.7])


def test_d1_greedy_dpp() -> None:
    picked = greedy_dpp_map(D1_S, D1_Q, k=3)
    assert picked == [0, 2, 3]
    assert dpp_log_det(D1_S, D1_Q, picked) == pytest.approx(-1.1032952366, abs=TOL)
    best = max(itertools.combinations(range(5), 3), key=lambda c: dpp_log_det(D1_S, D1_Q, c))
    assert sorted(picked) == list(best)


def test_dpp_stops_when_no_volume_left() -> None:
    assert greedy_dpp_map(np.ones((3, 3)), [1.0, 0.5, 0.2], k=3) == [0]
    assert greedy_dpp_map(np.eye(3), [0.2, 0.9, 0.5], k=5) == [1, 2, 0]
    assert greedy_dpp_map(np.eye(3), [1, 1, 1], k=0) == []


@pytest.mark.parametrize(("lam", "expected"), [(0.5, [0, 2, 3]), (1.0, [0, 1, 2])])
def test_d1_mmr(lam: float, expected: list[int]) -> None:
    assert mmr_select(D1_S, D1_Q, k=3, lam=lam) == expected


def test_mmr_edges() -> None:
    assert mmr_select(D1_S, D1_Q, k=10) == mmr_select(D1_S, D1_Q, k=5)
    assert sorted(mmr_select(D1_S, D1_Q, k=5)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        mmr_select(D1_S, D1_Q, k=2, lam=1.5)
    with pytest.raises(ValueError):
        mmr_select(D1_S, D1_Q[:3], k=2)


def test_p2_pass_at_k() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=TOL)
    assert pass_at_k(10, 3, 5) == pytest.approx(0.9166666667, abs=TOL)
    assert pass_at_k(10, 9, 5) == 1.0
    assert pass_at_k(4, 0, 4) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_p3_distinct_n() -> None:
    texts = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park"]
    assert distinct_n(texts, 1) == pytest.approx(0.5555555556, abs=TOL)
    assert distinct_n(texts, 2) == pytest.approx(0.8, abs=TOL)
    assert distinct_n(["one"], 2) == 0.0


def test_redundancy() -> None:
    assert redundant_pairs(V1, 0.85) == [(0, 1)]
    assert redundancy(V1, 0.85) == pytest.approx(1 / 3)
    assert redundancy(np.eye(1)) == 0.0
    assert redundant_pairs(D1_S, 0.9) == [(0, 1)]
