"""Pair-decision metrics (coversearch.evaluate.pairs) against scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as skm

from coversearch.errors import ConfigError, DataError
from coversearch.evaluate import pairs


@pytest.fixture
def example():
    # fixed example with ties inside and across classes
    rng = np.random.default_rng(7)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(size=300) + 1.2 * y, 1)  # rounding makes many ties
    return y, s


def test_roc_auc_matches_sklearn(example):
    y, s = example
    assert pairs.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    # distances: lower = versions
    assert pairs.roc_auc(y, -s) == pytest.approx(skm.roc_auc_score(y, -s), abs=1e-12)
    # a tiny hand example: 3 of 4 positive-negative pairs ordered right, one tie
    assert pairs.roc_auc([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)


def test_roc_curve_matches_sklearn(example):
    y, s = example
    fpr, tpr, thr = pairs.roc_curve(y, s)
    f2, t2, th2 = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])
    assert np.isinf(thr[0])


def test_precision_recall_and_ap_match_sklearn(example):
    y, s = example
    p, r, t = pairs.precision_recall_curve(y, s)
    p2, r2, t2 = skm.precision_recall_curve(y, s)
    # sklearn: increasing thresholds + a final (1, 0) point
    np.testing.assert_allclose(p, p2[:-1][::-1])
    np.testing.assert_allclose(r, r2[:-1][::-1])
    np.testing.assert_allclose(t, t2[::-1])
    assert pairs.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_rates_at_counts_and_matches_sklearn(example):
    y, s = example
    r = pairs.rates_at(y, s, 0.5)
    pred = s >= 0.5
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (tp, fp, tn, fn)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert r["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert r["far"] == pytest.approx(fp / (fp + tn))
    assert r["frr"] == pytest.approx(fn / (fn + tp))
    assert r["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    # the same decision phrased on distances
    rd = pairs.rates_at(y, -s, -0.5, greater_is_positive=False)
    assert (rd["tp"], rd["fp"]) == (tp, fp)


@pytest.mark.parametrize("criterion", pairs.CRITERIA)
def test_calibrated_threshold_is_optimal_on_its_pairs(example, criterion):
    y, s = example
    best = pairs.calibrate_threshold(y, s, criterion=criterion)
    # brute force over every candidate threshold
    cands = np.r_[np.unique(s), s.max() + 1]
    key = {"accuracy": lambda r: r["accuracy"], "balanced_accuracy": lambda r: r["balanced_accuracy"],
           "f1": lambda r: r["f1"], "eer": lambda r: -abs(r["far"] - r["frr"])}[criterion]
    brute = max(key(pairs.rates_at(y, s, t)) for t in cands)
    assert key(best) == pytest.approx(brute)
    assert best["threshold"] not in set(s.tolist())  # midway between validation scores
    assert best["auc"] == pytest.approx(skm.roc_auc_score(y, s))


def test_calibrated_distance_threshold_separable():
    d = np.array([0.05, 0.1, 0.2, 0.6, 0.7, 0.9])
    same = np.array([1, 1, 1, 0, 0, 0])
    r = pairs.calibrate_threshold(same, d, greater_is_positive=False)
    assert r["threshold"] == pytest.approx(0.4)
    assert r["accuracy"] == 1.0 and r["far"] == 0.0 and r["frr"] == 0.0


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="differ in length"):
        pairs.roc_auc([1, 0], [0.5])
    with pytest.raises(DataError, match="need both kinds"):
        pairs.roc_auc([1, 1], [0.5, 0.2])
    with pytest.raises(DataError, match="NaN"):
        pairs.roc_auc([1, 0], [np.nan, 0.2])
    with pytest.raises(ConfigError, match="criterion"):
        pairs.calibrate_threshold([1, 0], [0.5, 0.2], criterion="magic")


def test_fit_logistic_matches_sklearn(example):
    from sklearn.linear_model import LogisticRegression

    y, s = example
    a, b = pairs.fit_logistic(y, s, l2=0.0)
    ref = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(s[:, None], y)
    assert a == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert b == pytest.approx(ref.intercept_[0], rel=1e-4, abs=1e-6)
    p = pairs.logistic(np.array([-1e4, 0.0, 1e4]), 1.0, 0.0)
    np.testing.assert_allclose(p, [0.0, 0.5, 1.0])


def test_sample_pairs():
    works = np.array(["a", "a", "a", "b", "b", "c", "d"])
    i, j, same = pairs.sample_pairs(works, seed=3)
    assert same.sum() == 4 and (~same).sum() == 4  # 3 in a + 1 in b; as many negatives
    assert np.all(i < j)
    assert np.array_equal(works[i] == works[j], same)
    assert len(set(zip(i.tolist(), j.tolist()))) == len(i)
    i2, j2, _ = pairs.sample_pairs(works, seed=3)
    assert np.array_equal(i, i2) and np.array_equal(j, j2)
    _, _, s2 = pairs.sample_pairs(works, max_positive=2, n_negative=10, seed=0)
    assert s2.sum() == 2 and (~s2).sum() == 10
    with pytest.raises(DataError, match="only"):
        pairs.sample_pairs(works, n_negative=100)
    with pytest.raises(DataError, match="no work has two"):
        pairs.sample_pairs(["a", "b"])


def test_distances_and_distributions():
    v = np.eye(4)
    np.testing.assert_allclose(pairs.pair_distances(v, [0, 0], [0, 1]), [0.0, 1.0])
    rng = np.random.default_rng(0)
    d = np.r_[rng.uniform(0.0, 0.3, 200), rng.uniform(0.5, 1.0, 200)]
    same = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    sep = pairs.distance_distributions(d, same, bins=20)
    assert sep["overlap"] == 0.0 and sep["auc"] == 1.0
    assert sum(sep["in_work"]["hist"]) == pytest.approx(1.0)
    assert len(sep["edges"]) == 21
    mixed = pairs.distance_distributions(rng.uniform(0, 1, 4000), rng.random(4000) < 0.5, bins=10)
    assert mixed["overlap"] > 0.9 and 0.4 < mixed["auc"] < 0.6


def test_fit_logistic_centered_keeps_the_threshold(example):
    y, s = example
    t = pairs.calibrate_threshold(y, s)["threshold"]
    a, b = pairs.fit_logistic(y, s, center=t)
    assert a > 0
    assert pairs.logistic(np.array([t]), a, b)[0] == pytest.approx(0.5)
    p = pairs.logistic(s, a, b)
    assert np.all((p >= 0.5) == (s >= t))
