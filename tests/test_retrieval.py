"""Hand-worked and property tests of coversearch.evaluate.retrieval."""

import numpy as np
import pytest

from coversearch.evaluate.retrieval import metrics_from_scores, retrieval_metrics


def test_hand_worked_single_query():
    # Query of work "a" against 5 items; ranking by score: x(a) y(b) z(a) w(b) v(a)
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]], dtype=np.float32)
    items = ["a", "b", "a", "b", "a"]
    m = metrics_from_scores(scores, ["a"], items, per_query=True)
    # relevant ranks 1, 3, 5 -> AP = (1/1 + 2/3 + 3/5) / 3
    assert m["map"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert m["mr1"] == 1
    assert m["p_at_10"] == pytest.approx(3 / 10)
    assert m["n_queries"] == 1 and m["n_items"] == 5


def test_hand_worked_all_vs_all_with_singleton():
    # 1-D "embeddings" on a line; cosine of unit vectors in 2-D at angles.
    angles = np.array([0.0, 0.1, 1.0, 1.1, 3.0])
    v = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    labels = [1, 1, 2, 2, 3]  # work 3 is a singleton
    m = retrieval_metrics(v, labels, per_query=True)
    assert m["n_queries"] == 4  # the singleton is excluded
    assert m["n_items"] == 5
    assert m["map"] == pytest.approx(1.0)
    assert m["mr1"] == pytest.approx(1.0)
    assert m["p_at_10"] == pytest.approx(0.1)
    assert np.isnan(m["per_query"]["ap"][4])


def test_first_relevant_rank_and_ap():
    # query 0 (work a): item order by score 2(b), 3(b), 1(a)
    scores = np.array([[0.0, 0.1, 0.9, 0.5]])
    m = metrics_from_scores(scores, ["a"], ["a", "a", "b", "b"], query_rows=[0])
    assert m["mr1"] == 3
    assert m["map"] == pytest.approx(1 / 3)
    assert m["mrr"] == pytest.approx(1 / 3)
    assert m["hit_at_10"] == 1.0


def test_ties_are_pessimistic():
    # all scores equal: relevant items go after every tied irrelevant one
    scores = np.zeros((1, 4))
    m = metrics_from_scores(scores, ["a"], ["a", "b", "a", "b"])
    # relevant ranks 3, 4 -> AP = (1/3 + 2/4) / 2
    assert m["mr1"] == 3
    assert m["map"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    # ties among relevant items only: order irrelevant
    scores = np.array([[0.5, 0.5, 0.1]])
    m = metrics_from_scores(scores, ["a"], ["a", "a", "b"])
    assert m["map"] == pytest.approx(1.0)


def test_self_exclusion_with_minus_inf_relevant():
    scores = np.array([[5.0, -np.inf, 0.0]])
    m = metrics_from_scores(scores, ["a"], ["a", "a", "b"], query_rows=[0])
    # the self row must not count as an item scoring >= -inf
    assert m["mr1"] == 2


def test_p_at_k():
    scores = np.array([[0.9, 0.8, 0.7]])
    m = metrics_from_scores(scores, ["a"], ["a", "b", "a"], k=2)
    assert m["p_at_2"] == pytest.approx(0.5)


def test_block_size_does_not_change_results():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((137, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = rng.integers(0, 20, 137)
    a = retrieval_metrics(v, labels, block=1024)
    b = retrieval_metrics(v, labels, block=7)
    for key in ("map", "mr1", "p_at_10", "n_queries"):
        assert a[key] == pytest.approx(b[key])


def test_matches_brute_force_reference():
    rng = np.random.default_rng(1)
    n = 60
    v = rng.standard_normal((n, 4)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = rng.integers(0, 12, n)
    m = retrieval_metrics(v, labels, per_query=True)
    s = v @ v.T
    aps, r1s = [], []
    for i in range(n):
        order = [j for j in np.argsort(-s[i], kind="stable") if j != i]
        found = np.array([labels[j] == labels[i] for j in order])
        if not found.any():
            continue
        ranks = np.nonzero(found)[0] + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        r1s.append(ranks[0])
    assert m["map"] == pytest.approx(np.mean(aps))
    assert m["mr1"] == pytest.approx(np.mean(r1s))


def test_random_embeddings_are_near_chance():
    rng = np.random.default_rng(2)
    works, per = 100, 5
    n = works * per
    v = rng.standard_normal((n, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    labels = np.repeat(np.arange(works), per)
    m = retrieval_metrics(v, labels)
    # chance: P@10 ~ 4/499, MAP small, MR1 ~ n/(R+1) = 100
    assert m["map"] < 0.05
    assert m["p_at_10"] < 0.03
    assert 60 < m["mr1"] < 140


def test_labels_mismatch_raises():
    v = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError):
        retrieval_metrics(v, [1, 2])
    with pytest.raises(ValueError):
        metrics_from_scores(np.array([[np.nan, 1.0]]), ["a"], ["a", "b"])


def test_scores_not_modified_and_self_tie_ignored():
    # self score ties the relevant item's score: self must not push it down
    scores = np.array([[0.7, 0.7, 0.1], [0.2, 0.9, 0.9]])
    before = scores.copy()
    m = metrics_from_scores(scores, ["a", "a"], ["a", "a", "b"], query_rows=[0, 1], per_query=True)
    np.testing.assert_array_equal(scores, before)
    # query 0: relevant item 1 (0.7) vs irrelevant 2 (0.1) -> rank 1
    # query 1: relevant item 0 (0.2) after irrelevant item 2 (0.9) -> rank 2
    np.testing.assert_array_equal(m["per_query"]["r1"], [1, 2])


def test_recall_at_k_hand_worked():
    # query a: ranking x(a) y(b) z(a) w(b) v(a) -> relevant ranks 1, 3, 5
    from coversearch.evaluate.retrieval import recall_cutoffs

    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    items = ["a", "b", "a", "b", "a"]
    fr = (0.2, 0.6, 1.0)  # K = 1, 3, 5 of 5 items
    assert recall_cutoffs(5, fr).tolist() == [1, 3, 5]
    m = metrics_from_scores(scores, ["a"], items, recall_fractions=fr)
    assert [r["k"] for r in m["recall_at_k"]] == [1, 3, 5]
    assert [r["recall"] for r in m["recall_at_k"]] == pytest.approx([1 / 3, 2 / 3, 1.0])
    # ties are pessimistic here too: all-equal scores put relevant items last
    m = metrics_from_scores(np.zeros((1, 4)), ["a"], ["a", "b", "b", "a"], recall_fractions=(0.5,))
    assert m["recall_at_k"][0]["recall"] == 0.0


def test_recall_at_k_blocked_matches_dense_and_brute_force():
    from coversearch.evaluate.retrieval import recall_at_k

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 40, 300)
    v = rng.normal(size=(300, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    fr = (0.01, 0.05, 0.1)
    got = recall_at_k(v, labels, fractions=fr, block=37)
    assert got == recall_at_k(v, labels, fractions=fr, block=1024)
    # brute force: sort each row, self excluded
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    for r in got:
        vals = []
        for q in range(300):
            rel = (labels == labels[q]) & (np.arange(300) != q)
            if rel.any():
                top = np.argsort(-sims[q], kind="stable")[: r["k"]]
                vals.append(rel[top].sum() / rel.sum())
        assert r["recall"] == pytest.approx(np.mean(vals))
    assert [r["recall"] for r in got] == sorted(r["recall"] for r in got)  # grows with K
