"""The numbers of ``coversearch report``: everything the page draws, computed
from an index's vectors and work labels (and its model's training record),
as plain JSON-able values. Drawing lives in :mod:`coversearch.report.render`;
nothing here imports matplotlib or torch.

Every metric comes from the shared evaluation code: retrieval figures from
:mod:`coversearch.evaluate.retrieval` (the same per-query AP and first-rank
arrays ``evaluate`` averages), so the page can never disagree with
``coversearch evaluate`` on the same index.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from coversearch.evaluate.retrieval import retrieval_metrics

__all__ = [
    "RANK_BINS",
    "retrieval_section",
    "embedding_map",
    "kmeans_agreement",
    "training_section",
    "kmeans_grid",
]

#: Upper edges (inclusive) of the rank-of-the-first-version histogram; the last
#: bin is open ("> 200").
RANK_BINS = (1, 2, 3, 5, 10, 20, 50, 100, 200)


def _rank_histogram(r1: np.ndarray) -> list[dict]:
    edges = (0,) + RANK_BINS
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        label = f"{hi}" if hi == lo + 1 else f"{lo + 1}-{hi}"
        out.append({"bin": label, "count": int(np.count_nonzero((r1 > lo) & (r1 <= hi)))})
    out.append({"bin": f">{edges[-1]}", "count": int(np.count_nonzero(r1 > edges[-1]))})
    return out


def retrieval_section(vectors: np.ndarray, labels: Sequence, *, worst: int = 25) -> dict:
    """All-against-all retrieval figures of an index's vectors.

    Args:
        vectors: (N, D) float32 unit rows.
        labels: (N,) work ids.
        worst: rows of the per-work AP table kept in ``works_worst``.

    Returns:
        dict: ``metrics`` (as ``coversearch evaluate``), ``recall_at_k`` (the
        cosine shortlist's recall at K = 0.5 ... 10% of the catalogue, from
        :func:`coversearch.evaluate.retrieval.retrieval_metrics`), ``rank_histogram``
        (count of queries per bin of the first version's rank),
        ``map_by_clique_size`` (``[{size, n_works, n_queries, map, mr1}]``,
        size = versions of the work in the index), ``works_worst`` (per-work
        mean AP, worst first) and ``n_works_with_versions``.
    """
    labels = np.asarray(labels)
    m = retrieval_metrics(vectors, labels, per_query=True)
    pq = m.pop("per_query")
    valid = pq["n_rel"] > 0
    ap, r1, size = pq["ap"][valid], pq["r1"][valid], pq["n_rel"][valid] + 1
    qlab = labels[valid]
    by_size = []
    for s in np.unique(size):
        sel = size == s
        by_size.append({"size": int(s), "n_works": int(len(np.unique(qlab[sel]))),
                        "n_queries": int(sel.sum()), "map": float(ap[sel].mean()),
                        "mr1": float(r1[sel].mean())})
    works = []
    for w in np.unique(qlab):
        sel = qlab == w
        works.append({"work_id": str(w), "versions": int(size[sel][0]), "ap": float(ap[sel].mean()),
                      "mr1": float(r1[sel].mean()), "best_r1": int(r1[sel].min())})
    works.sort(key=lambda r: (r["ap"], r["work_id"]))
    return {
        "metrics": {k: v for k, v in m.items() if not isinstance(v, (np.ndarray, list))},
        "recall_at_k": m.get("recall_at_k", []),
        "rank_histogram": _rank_histogram(r1),
        "map_by_clique_size": by_size,
        "works_worst": works[:worst],
        "n_works_with_versions": len(works),
        "work_ap_quantiles": {q: float(np.quantile([w["ap"] for w in works], float(q)))
                              for q in ("0.1", "0.25", "0.5", "0.75", "0.9")} if works else {},
    }


def _largest_works(labels: np.ndarray, n: int) -> list[str]:
    works, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((works, -counts))  # most versions first, ties by id
    return [str(works[i]) for i in order[:n] if counts[i] >= 2]


def embedding_map(vectors: np.ndarray, labels: Sequence, *, n_works: int = 10) -> dict:
    """2-D PCA map of the embeddings, with the points of the largest works.

    The axes are fit on every item (so the map shows the whole catalogue's
    main directions); only the ``n_works`` largest works are returned, one
    colour each in the figure, plus a capped sample of the rest as context.

    Returns:
        dict: ``explained`` (variance share of the 2 axes), ``works`` (ids),
        ``points`` (``[{work_id, x, y}]`` of those works), ``context``
        (``[[x, y], ...]`` of up to 2,000 other items, seeded sample).
    """
    x = np.asarray(vectors, np.float64)
    labels = np.asarray(labels)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    xy = (x - mean) @ vt[:2].T  # (N, 2)
    var = s ** 2
    works = _largest_works(labels, n_works)
    chosen = np.isin(labels, works)
    rest = np.flatnonzero(~chosen)
    if rest.size > 2000:
        rest = np.sort(np.random.default_rng(0).choice(rest, 2000, replace=False))
    return {
        "method": "pca",
        "explained": [float(v) for v in (var[:2] / var.sum())] if var.sum() > 0 else [0.0, 0.0],
        "works": works,
        "points": [{"work_id": str(labels[i]), "x": round(float(xy[i, 0]), 5), "y": round(float(xy[i, 1]), 5)}
                   for i in np.flatnonzero(chosen)],
        "context": [[round(float(a), 5), round(float(b), 5)] for a, b in xy[rest]],
    }


def kmeans_grid(n_items: int, n_works: int) -> list[int]:
    """The k values of the K-means sweep: doubling from 2, plus the true number of works."""
    ks, k = [], 2
    while k < min(n_items, 4 * n_works):
        ks.append(k)
        k *= 2
    if 2 <= n_works < n_items:
        ks.append(n_works)
    return sorted(set(ks))


def _purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    total = 0
    for c in np.unique(clusters):
        _, counts = np.unique(labels[clusters == c], return_counts=True)
        total += counts.max()
    return total / len(labels)


def kmeans_agreement(vectors: np.ndarray, labels: Sequence, *, ks: Sequence[int] | None = None,
                     seed: int = 0, multi_only: bool = True) -> dict:
    """K-means on the embeddings against the work labels, as k grows.

    Args:
        vectors: (N, D) float rows (unit rows: K-means in the cosine geometry).
        labels: (N,) work ids.
        ks: cluster counts; None = :func:`kmeans_grid`.
        seed: K-means initialisation seed.
        multi_only: cluster only items of works with >= 2 versions (singletons
            have nothing to agree with and would dominate both indices).

    Returns:
        dict: ``n_items``, ``n_works`` clustered, and ``rows``
        (``[{k, ari, nmi, purity}]``).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    x = np.asarray(vectors, np.float64)
    labels = np.asarray(labels)
    if multi_only:
        works, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
        keep = counts[inv] >= 2
        x, labels = x[keep], labels[keep]
    n_works = len(np.unique(labels))
    ks = list(ks) if ks is not None else kmeans_grid(len(labels), n_works)
    rows = []
    for k in ks:
        if k < 2 or k > len(labels):
            continue
        pred = KMeans(n_clusters=int(k), n_init=3, random_state=seed).fit_predict(x)
        rows.append({"k": int(k), "ari": float(adjusted_rand_score(labels, pred)),
                     "nmi": float(normalized_mutual_info_score(labels, pred)),
                     "purity": float(_purity(labels, pred))})
    return {"n_items": int(len(labels)), "n_works": int(n_works), "multi_only": bool(multi_only), "rows": rows}


def training_section(record: dict | None) -> dict | None:
    """Training curves from a model record (``history`` of per-epoch rows).

    Returns:
        None without a record or history; else ``{"model_hash", "epochs":
        [...], "loss": [...], "val_map": [...], "best": {...}, "source",
        "train_config"}`` (``val_map`` entries None where not measured).
    """
    if not record or not record.get("history"):
        return None
    h = record["history"]
    return {
        "model_hash": record.get("model_hash", ""),
        "epochs": [int(r["epoch"]) for r in h],
        "loss": [float(r["loss"]) for r in h],
        "val_map": [r.get("val_map") for r in h],
        "val_mr1": [r.get("val_mr1") for r in h],
        "seconds": [r.get("seconds") for r in h],
        "best": record.get("best", {}),
        "source": record.get("source", ""),
        "train_config": record.get("train_config", {}),
        "n_train_works": record.get("n_train_works"),
        "n_val_works": record.get("n_val_works"),
    }


def _thin(*curves, n: int = 400) -> list[list[float]]:
    """Keep at most ``n`` evenly spaced points of equally long curves (for the page and JSON)."""
    m = len(curves[0])
    idx = np.unique(np.r_[np.linspace(0, m - 1, min(n, m)).round().astype(int), m - 1])
    return [[round(float(c[i]), 6) for i in idx] for c in curves]


def pairs_section(vectors: np.ndarray, labels: Sequence, *, seed: int = 0, model_threshold: dict | None = None) -> dict:
    """"Same work?" decisions on pairs, by thresholding the cosine distance.

    The pairs are every in-work pair of the index and as many cross-work
    pairs drawn uniformly (seeded): balanced, as the earlier write-ups
    measured pair accuracy. ROC AUC does not depend on the balance; precision
    and accuracy do, and are stated for this balance.

    The threshold is calibrated on half of the works (seeded split; pairs with
    both works in that half, balanced accuracy) and its accuracy, F1 and error
    rates are reported on pairs of the other half, so the figure is not tuned
    on the pairs it is scored on. ``model_threshold`` (a calibration stored
    with the model, ``{"distance": t, ...}``) is also scored on all pairs.

    Returns:
        dict: ``n_pairs``, ``auc``, ``average_precision``, ``distances``
        (``edges``, ``in_work`` / ``cross_work`` densities per bin, stats,
        ``overlap``), ``roc`` (``fpr``, ``tpr``), ``pr`` (``precision``,
        ``recall``), ``threshold`` (calibrated on one half, scored on the
        other), ``model_threshold`` (when given).
    """
    from coversearch.evaluate import pairs as pr

    labels = np.asarray(labels)
    v = np.asarray(vectors, np.float64)
    i, j, same = pr.sample_pairs(labels, seed=seed)
    d = pr.pair_distances(v, i, j)
    hi = float(max(1e-6, d.max()))
    dist = pr.distance_distributions(d, same, bins=50, value_range=(0.0, hi))
    width = hi / 50
    fpr, tpr, _ = pr.roc_curve(same, -d)
    prec, rec, _ = pr.precision_recall_curve(same, -d)
    out = {
        "n_pairs": int(len(d)), "n_in_work": int(same.sum()),
        "auc": pr.roc_auc(same, -d), "average_precision": pr.average_precision(same, -d),
        "distances": {"edges": dist["edges"], "overlap": dist["overlap"],
                      "in_work": [p / width for p in dist["in_work"]["hist"]],
                      "cross_work": [p / width for p in dist["cross_work"]["hist"]],
                      "in_work_stats": {k: dist["in_work"][k] for k in ("n", "mean", "std", "quantiles")},
                      "cross_work_stats": {k: dist["cross_work"][k] for k in ("n", "mean", "std", "quantiles")}},
        "roc": dict(zip(("fpr", "tpr"), _thin(fpr, tpr))),
        "pr": dict(zip(("precision", "recall"), _thin(prec, rec))),
    }
    works = np.unique(labels)
    fold = dict(zip(works.tolist(), np.random.default_rng(seed + 1).permutation(len(works)) % 2))
    f = np.array([fold[w] for w in labels.tolist()])
    halves = []
    for h in (0, 1):
        rows = np.flatnonzero(f == h)
        try:
            hi_, hj, hs = pr.sample_pairs(labels[rows], seed=seed + 2 + h)
        except Exception:  # a half without any version pair: no split calibration possible
            halves = []
            break
        halves.append((pr.pair_distances(v[rows], hi_, hj), hs))
    if len(halves) == 2 and all(s.any() and (~s).any() for _, s in halves):
        cal = pr.calibrate_threshold(halves[0][1], halves[0][0], greater_is_positive=False,
                                     criterion="balanced_accuracy")
        test = pr.rates_at(halves[1][1], halves[1][0], cal["threshold"], greater_is_positive=False)
        out["threshold"] = {"distance": cal["threshold"], "calibrated_on": f"{cal['n_pairs']} pairs of half the works",
                            "scored_on": f"{test['n_pairs']} pairs of the other half",
                            **{k: test[k] for k in ("accuracy", "f1", "precision", "recall", "far", "frr")}}
    if model_threshold and "distance" in model_threshold:
        r = pr.rates_at(same, d, float(model_threshold["distance"]), greater_is_positive=False)
        out["model_threshold"] = {"distance": float(model_threshold["distance"]),
                                  "source": model_threshold.get("source", "the model's calibration"),
                                  **{k: r[k] for k in ("accuracy", "f1", "precision", "recall", "far", "frr")}}
    return out
