"""Pair decisions: "are these two performances versions of the same work?"

Retrieval (:mod:`coversearch.evaluate.retrieval`) ranks a catalogue; this
module scores a *decision* on single pairs, the question ``coversearch
compare A B`` answers. Everything here is pure numpy (no torch, no
scikit-learn at run time; the tests check agreement with scikit-learn).

Conventions:

* ``labels``: (N,) bool/int, 1 = the pair are versions (same work).
* ``scores``: (N,) float, larger = more likely versions (a similarity or a
  fused score). For a distance pass ``greater_is_positive=False`` where
  offered, or negate it.
* A threshold ``t`` decides "versions" when ``score >= t`` (or
  ``distance <= t`` for a distance).
* **FAR** (false-accept rate) = false "versions" / all non-version pairs;
  **FRR** (false-reject rate) = missed versions / all version pairs.

Contents: :func:`roc_curve` / :func:`roc_auc` and
:func:`precision_recall_curve` / :func:`average_precision` (the definitions
of scikit-learn's ``roc_curve``, ``roc_auc_score``, ``precision_recall_curve``
and ``average_precision_score``, ties included), :func:`rates_at` and
:func:`calibrate_threshold` (pick a threshold on validation pairs),
:func:`fit_logistic` (Platt scaling: a score -> probability), and
:func:`sample_pairs` / :func:`pair_distances` /
:func:`distance_distributions` (in-work vs cross-work distances and how much
they overlap).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from coversearch.errors import ConfigError, DataError

__all__ = [
    "roc_curve",
    "roc_auc",
    "precision_recall_curve",
    "average_precision",
    "rates_at",
    "calibrate_threshold",
    "CRITERIA",
    "fit_logistic",
    "logistic",
    "sample_pairs",
    "pair_distances",
    "distance_distributions",
]

CRITERIA = ("accuracy", "balanced_accuracy", "f1", "eer")


def _check(labels, scores, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validated (y bool (N,), s float64 (N,))."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise DataError(f"pair labels {y.shape} and scores {s.shape} differ in length")
    if y.size == 0:
        raise DataError("no pairs to score")
    if not np.isfinite(s).all():
        raise DataError(f"{int((~np.isfinite(s)).sum())} pair score(s) are NaN or infinite")
    if y.dtype != bool:
        u = np.unique(y)
        if not np.isin(u, (0, 1)).all():
            raise DataError(f"pair labels must be 0/1 or bool, got values {u[:5].tolist()}")
        y = y.astype(bool)
    if need_both and (y.all() or not y.any()):
        kind = "version" if y.all() else "non-version"
        raise DataError(f"every pair is a {kind} pair; need both kinds to score a decision")
    return y, s


def _oriented(scores, greater_is_positive: bool) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return s if greater_is_positive else -s


def _cumulative_counts(y: np.ndarray, s: np.ndarray):
    """True/false positives when accepting every score >= each distinct score.

    Returns:
        (thresholds (D,) float64 descending, tp (D,) int64, fp (D,) int64).
    """
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # last index of each run of equal scores: ties enter together
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), y_sorted.size - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    return s_sorted[last], tp.astype(np.int64), fp.astype(np.int64)


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve over every distinct score (no point dropped).

    Args:
        labels: (N,) 1 = versions.
        scores: (N,) larger = more likely versions.

    Returns:
        (fpr (D+1,), tpr (D+1,), thresholds (D+1,)) float64, thresholds
        descending, starting at +inf (accept nothing: the point (0, 0)).
    """
    y, s = _check(labels, scores)
    thr, tp, fp = _cumulative_counts(y, s)
    p, n = int(y.sum()), int((~y).sum())
    return (np.r_[0.0, fp / n], np.r_[0.0, tp / p], np.r_[np.inf, thr])


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (ties count one half, as scikit-learn's ``roc_auc_score``).

    Equals the probability that a random version pair scores above a random
    non-version pair.
    """
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score, thresholds descending.

    Returns:
        (precision (D,), recall (D,), thresholds (D,)) float64; recall is
        non-decreasing. (scikit-learn returns the same points in the reverse
        order plus a final (precision 1, recall 0) point.)
    """
    y, s = _check(labels, scores)
    thr, tp, fp = _cumulative_counts(y, s)
    return tp / (tp + fp), tp / int(y.sum()), thr


def average_precision(labels, scores) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds (scikit-learn's
    ``average_precision_score``, no interpolation)."""
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def rates_at(labels, scores, threshold: float, *, greater_is_positive: bool = True) -> dict:
    """Decision quality of one threshold.

    Args:
        labels: (N,) 1 = versions.
        scores: (N,) scores (or distances, with ``greater_is_positive=False``).
        threshold: decide "versions" when score >= threshold (distance <= threshold).

    Returns:
        {"threshold", "n_pairs", "n_positive", "n_negative", "tp", "fp", "tn",
        "fn", "accuracy", "balanced_accuracy", "precision", "recall", "f1",
        "far", "frr"}; precision is 1.0 when nothing is accepted.
    """
    y, s = _check(labels, scores, need_both=False)
    accept = s >= threshold if greater_is_positive else s <= threshold
    tp = int(np.sum(accept & y))
    fp = int(np.sum(accept & ~y))
    fn = int(np.sum(~accept & y))
    tn = int(np.sum(~accept & ~y))
    p, n = tp + fn, fp + tn
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / p if p else 0.0
    far = fp / n if n else 0.0
    frr = fn / p if p else 0.0
    return {
        "threshold": float(threshold),
        "n_pairs": int(y.size), "n_positive": p, "n_negative": n,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / y.size,
        "balanced_accuracy": 1.0 - (far + frr) / 2.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "far": far,
        "frr": frr,
    }


def calibrate_threshold(labels, scores, *, greater_is_positive: bool = True, criterion: str = "balanced_accuracy") -> dict:
    """Choose the decision threshold on validation pairs.

    Candidates lie midway between consecutive distinct scores (plus one
    beyond each end), so the choice does not sit on a validation example.

    Args:
        labels: (N,) 1 = versions.
        scores: (N,) scores, or distances with ``greater_is_positive=False``.
        criterion: ``accuracy``, ``balanced_accuracy`` (1 - (FAR + FRR) / 2,
            independent of how many pairs of each kind were sampled), ``f1``,
            or ``eer`` (where FAR and FRR are closest: the equal-error point).

    Returns:
        :func:`rates_at` of the chosen threshold, plus ``criterion``,
        ``greater_is_positive``, ``auc`` and ``average_precision``.

    Raises:
        ConfigError: unknown criterion.
        DataError: bad inputs, or only one kind of pair.
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"threshold criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    y, raw = _check(labels, scores)
    s = _oriented(raw, greater_is_positive)
    thr, tp, fp = _cumulative_counts(y, s)  # accepting s >= thr[d]
    p, n = int(y.sum()), int((~y).sum())
    # candidate d accepts the top runs 0..d; candidate -1 accepts nothing
    tp = np.r_[0, tp]
    fp = np.r_[0, fp]
    far, frr = fp / n, 1.0 - tp / p
    if criterion == "accuracy":
        value = (tp + (n - fp)) / (p + n)
    elif criterion == "balanced_accuracy":
        value = 1.0 - (far + frr) / 2.0
    elif criterion == "f1":
        value = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + (p - tp), 1), 0.0)
    else:
        value = -np.abs(far - frr)
    best = int(np.argmax(value))  # first of equals = highest threshold: fewest false accepts
    if best == 0:  # accept nothing
        t_oriented = float(np.nextafter(thr[0], np.inf))
    elif best == len(thr):  # accept everything
        t_oriented = float(thr[-1])
    else:  # midway between the last accepted run and the first rejected one
        t_oriented = float((thr[best - 1] + thr[best]) / 2.0)
    t = t_oriented if greater_is_positive else -t_oriented
    out = rates_at(y, raw, t, greater_is_positive=greater_is_positive)
    out.update(criterion=criterion, greater_is_positive=bool(greater_is_positive),
               auc=roc_auc(y, s), average_precision=average_precision(y, s))
    return out


def logistic(scores, a: float, b: float) -> np.ndarray:
    """``1 / (1 + exp(-(a * score + b)))``, float64, computed without overflow."""
    z = a * np.asarray(scores, dtype=np.float64) + b
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def fit_logistic(labels, scores, *, center: float | None = None, l2: float = 1e-4, iters: int = 100) -> tuple[float, float]:
    """Platt scaling: fit ``P(versions | score) = logistic(a * score + b)``.

    Newton's method on the mean log-loss with a small L2 penalty on ``a``
    (keeps ``a`` finite when the classes separate perfectly). The
    probabilities hold at the class balance of the fitting pairs.

    Args:
        labels: (N,) 1 = versions.
        scores: (N,) larger = more likely versions.
        center: if given, fit only the slope with the curve's midpoint fixed
            there (``b = -a * center``), so that P >= 0.5 exactly on the
            accepting side of a threshold chosen by another criterion.
        l2: penalty on ``a``.
        iters: at most this many Newton steps.

    Returns:
        (a, b) floats.
    """
    y, s = _check(labels, scores)
    yf = y.astype(np.float64)
    if center is not None:
        x = s - float(center)
        a = 0.0
        for _ in range(iters):
            p = logistic(x, a, 0.0)
            grad = float(np.mean((p - yf) * x)) + l2 * a
            hess = float(np.mean(p * (1 - p) * x * x)) + l2 + 1e-12
            step = grad / hess
            a -= step
            if abs(step) < 1e-10:
                break
        return float(a), float(-a * center)
    X = np.c_[s, np.ones_like(s)]  # (N, 2)
    w = np.zeros(2)
    reg = np.diag([l2, 0.0])
    for _ in range(iters):
        p = logistic(s, w[0], w[1])
        grad = X.T @ (p - yf) / y.size + reg @ w
        hess = (X * (p * (1 - p))[:, None]).T @ X / y.size + reg + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(w[0]), float(w[1])


def sample_pairs(work_ids: Sequence, *, max_positive: int | None = None, n_negative: int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Version pairs and cross-work pairs of a labelled set, seeded.

    Args:
        work_ids: (N,) work of each item.
        max_positive: keep at most this many in-work pairs (seeded sample;
            None = all of them).
        n_negative: how many distinct cross-work pairs to draw uniformly
            (None = as many as positives).
        seed: random seed.

    Returns:
        (i (M,) int64, j (M,) int64, same (M,) bool) with i < j, positives
        first, no pair repeated.

    Raises:
        DataError: no work with two items, or not enough cross-work pairs.
    """
    labels = np.asarray(work_ids)
    rng = np.random.default_rng(seed)
    _, inv = np.unique(labels, return_inverse=True)
    pos_i, pos_j = [], []
    for g in np.unique(inv):
        members = np.flatnonzero(inv == g)
        if members.size >= 2:
            a, b = np.triu_indices(members.size, k=1)
            pos_i.append(members[a])
            pos_j.append(members[b])
    if not pos_i:
        raise DataError("no work has two performances: no version pairs to sample")
    pi, pj = np.concatenate(pos_i), np.concatenate(pos_j)
    if max_positive is not None and pi.size > max_positive:
        keep = np.sort(rng.choice(pi.size, max_positive, replace=False))
        pi, pj = pi[keep], pj[keep]
    n_neg = pi.size if n_negative is None else int(n_negative)
    n = labels.size
    total_cross = n * (n - 1) // 2 - sum(c * (c - 1) // 2 for c in np.bincount(inv))
    if n_neg > total_cross:
        raise DataError(f"asked for {n_neg} cross-work pairs, the set has only {total_cross}")
    seen: set[tuple[int, int]] = set()
    ni, nj = [], []
    while len(ni) < n_neg:
        m = 2 * (n_neg - len(ni)) + 16
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        for x, y in zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist()):
            if inv[x] != inv[y] and (x, y) not in seen:
                seen.add((x, y))
                ni.append(x)
                nj.append(y)
                if len(ni) == n_neg:
                    break
    i = np.r_[pi, np.asarray(ni, np.int64)].astype(np.int64)
    j = np.r_[pj, np.asarray(nj, np.int64)].astype(np.int64)
    same = np.r_[np.ones(pi.size, bool), np.zeros(len(ni), bool)]
    return i, j, same


def pair_distances(vectors: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine distances ``1 - <v_i, v_j>`` of unit vectors.

    Args:
        vectors: (N, D) float unit vectors.
        i, j: (M,) int row indices.

    Returns:
        (M,) float64.
    """
    v = np.asarray(vectors, dtype=np.float64)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    if v.ndim != 2:
        raise DataError(f"vectors must be (N, D), got shape {v.shape}")
    if i.shape != j.shape:
        raise DataError(f"pair index arrays differ in length: {i.shape} vs {j.shape}")
    return 1.0 - np.einsum("md,md->m", v[i], v[j])


def distance_distributions(distances, same, *, bins: int = 50, value_range: tuple[float, float] | None = None) -> dict:
    """In-work vs cross-work distance distributions and their overlap.

    Args:
        distances: (M,) pair distances (or any score).
        same: (M,) bool, True = in-work pair.
        bins: histogram bins (shared by both).
        value_range: (lo, hi) of the histogram; default the data's range.

    Returns:
        {"in_work": stats, "cross_work": stats, "edges": (bins+1,) list,
        "overlap": float, "auc": float} where stats = {"n", "mean", "std",
        "quantiles": {"5", "25", "50", "75", "95"}, "hist": (bins,) list of
        probabilities}; ``overlap`` = sum over bins of min(p_in, p_cross), the
        shared mass (0 = separated, 1 = identical); ``auc`` = P(an in-work
        pair is closer than a cross-work pair).
    """
    y, d = _check(same, distances)
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    lo, hi = value_range if value_range is not None else (float(d.min()), float(d.max()))
    if hi <= lo:
        hi = lo + 1e-9
    edges = np.linspace(lo, hi, bins + 1)

    def stats(x):
        h, _ = np.histogram(np.clip(x, lo, hi), bins=edges)
        q = np.percentile(x, [5, 25, 50, 75, 95])
        return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std()),
                "quantiles": {str(k): float(v) for k, v in zip((5, 25, 50, 75, 95), q)},
                "hist": (h / x.size).tolist()}

    a, b = stats(d[y]), stats(d[~y])
    overlap = float(np.minimum(a["hist"], b["hist"]).sum())
    return {"in_work": a, "cross_work": b, "edges": edges.tolist(), "overlap": overlap, "auc": roc_auc(y, -d)}
