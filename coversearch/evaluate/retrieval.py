"""Retrieval metrics of the version-identification protocol: MAP, MR1, P@10.

This module owns the evaluation protocol: every item queries all the others
(itself excluded), items are ranked by descending similarity, and an item is
relevant to a query when both belong to the same work (clique). Scores are
computed block by block (a block of queries against all items), so memory is
``O(block * N)``, never ``O(N * N)``.

Definitions (per query with at least one relevant item, then averaged):

* **AP** -- non-interpolated average precision over the *full* ranking:
  ``AP = (1/R) * sum_i i / rank_i`` where ``rank_1 < ... < rank_R`` are the
  1-based ranks of the ``R`` relevant items. **MAP** is its mean.
* **MR1** -- mean 1-based rank of the first relevant item (lower is better).
* **P@10** -- (number of relevant items in the top 10) / 10, averaged.
* extras: **MRR** (mean of ``1 / rank_1``) and **hit@10** (fraction of
  queries with a relevant item in the top 10).
* **recall at K** -- the share of a query's relevant items ranked within the
  first K (same pessimistic ranks), averaged over queries: the ceiling of a
  second stage that re-orders a shortlist of K. K is given as a share of the
  catalogue (:data:`RECALL_FRACTIONS`, K = max(1, round(f * N))) so that
  figures at 3,000 and at 15,000 items compare the same shortlist cost share.

Queries with no relevant item (singleton works) are excluded from every mean
and from ``n_queries``; they still serve as distractors for other queries.

Which reference we follow, and where they differ:

* AP is identical in MOVE (furkanyesiler/move, ``utils/move_utils.py``,
  ``average_precision``: ``sum(cumsum(found)/pos * found) / sum(ytrue)``, then
  queries with ``sum(ytrue) == 0`` dropped) and acoss (furkanyesiler/acoss,
  ``algorithm_template.py``, ``getEvalStatistics``: ``mean(j / rank_j)``).
* MR1 follows acoss (mean first-relevant rank over queries from cliques of
  size >= 2). MOVE averages it over *all* rows, and a query with no relevant
  item gets rank 1 there (argmax of an all-zero row); on Da-TACOS benchmark
  every work has 13 versions, so both agree.
* "Top-10" is a *count* in both references, and a different one: MOVE sums
  the relevant items found in the top 10 over all queries
  (``sum(found[:, :10])``), so ``p_at_10 == MOVE_top10 / (10 * n_queries)``;
  acoss counts queries whose first relevant item is within the top 10, which
  is our ``hit_at_10 * n_queries``. acoss's MRR divides by all N songs, ours
  by ``n_queries``.
* Ties: MOVE uses ``torch.topk`` and acoss ``np.argsort`` (unstable), so tied
  scores are ordered arbitrarily there. We rank **pessimistically**: a
  relevant item is placed after every irrelevant item whose score is >= its
  own (ties among relevant items do not matter: they occupy the same set of
  positions). A constant scorer therefore gets chance-level, not perfect,
  metrics.

Self-exclusion: the query's own row is removed from the ranking (neither
relevant nor a distractor), as both references do with a ``-inf`` diagonal;
we subtract it from the counts instead of writing into the score block.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

__all__ = [
    "RECALL_FRACTIONS",
    "recall_cutoffs",
    "recall_at_k",
    "format_recall",
    "retrieval_metrics",
    "metrics_from_scores",
    "blocked_metrics",
    "rank_block",
    "summarise",
    "encode_labels",
]


#: Shortlist sizes of the recall-at-K report, as shares of the catalogue.
RECALL_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.10)


def recall_cutoffs(n_items: int, fractions: Sequence[float] = RECALL_FRACTIONS) -> np.ndarray:
    """Shortlist sizes K for catalogue shares: ``max(1, round(f * n_items))``.

    Args:
        n_items: catalogue size N.
        fractions: shares of the catalogue, each in (0, 1].

    Returns:
        (len(fractions),) int64 K values.
    """
    f = np.asarray(fractions, np.float64).reshape(-1)
    if ((f <= 0) | (f > 1)).any():
        raise ValueError(f"recall fractions must be in (0, 1], got {f.tolist()}")
    return np.maximum(1, np.round(f * int(n_items))).astype(np.int64)


def encode_labels(labels: Sequence) -> np.ndarray:
    """Map work ids (str or int) to dense integer codes.

    Args:
        labels: (N,) work ids, any hashable scalar type numpy can sort.

    Returns:
        (N,) int64 codes; equal codes iff equal labels.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    _, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64).reshape(-1)


def rank_block(
    scores: np.ndarray,
    query_codes: np.ndarray,
    item_codes: np.ndarray,
    query_rows: np.ndarray | None = None,
    *,
    k: int = 10,
    recall_ks: Sequence[int] = (),
) -> dict[str, np.ndarray]:
    """Per-query metrics for one dense block of scores (higher = more similar).

    Args:
        scores: (Q, N) float scores of Q queries against N items; must not
            contain NaN; not modified.
        query_codes: (Q,) int work codes of the queries.
        item_codes: (N,) int work codes of the items.
        query_rows: (Q,) int row of each query among the items, excluded from
            its own ranking; -1 (or None for all) means the query is not an item.
        k: cut-off of ``p_at_k``.
        recall_ks: shortlist sizes of the ``recall`` entry (may be empty).

    Returns:
        dict of (Q,) float64 arrays: ``ap``, ``r1`` (first relevant rank),
        ``p_at_k``, ``p_at_10``, ``n_rel`` (relevant count, int64), and
        ``recall`` (Q, len(recall_ks)): share of the relevant items ranked
        within each K. Entries of queries without relevant items are NaN
        (``n_rel`` = 0).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (Q, N), got shape {scores.shape}")
    q, n = scores.shape
    query_codes = np.asarray(query_codes).reshape(-1)
    item_codes = np.asarray(item_codes).reshape(-1)
    if query_codes.shape[0] != q or item_codes.shape[0] != n:
        raise ValueError(
            f"labels do not match scores {scores.shape}: "
            f"{query_codes.shape[0]} query labels, {item_codes.shape[0]} item labels"
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    rel = item_codes[None, :] == query_codes[:, None]  # (Q, N) bool
    # The query's own row stays in ``scores`` (never written: the caller's
    # array may be a view) and is subtracted from the counts below instead.
    self_score = np.full(q, -np.inf)
    has_self = np.zeros(q, dtype=bool)
    if query_rows is not None:
        query_rows = np.asarray(query_rows, dtype=np.int64).reshape(-1)
        if query_rows.shape[0] != q:
            raise ValueError(f"{query_rows.shape[0]} query_rows for {q} queries")
        has_self = query_rows >= 0
        qi = np.nonzero(has_self)[0]
        self_score[qi] = scores[qi, query_rows[qi]]
        rel[qi, query_rows[qi]] = False
    sorted_scores = np.sort(scores, axis=1)  # (Q, N) ascending

    out = {name: np.full(q, np.nan) for name in ("ap", "r1", "p_at_k", "p_at_10")}
    out["n_rel"] = rel.sum(axis=1).astype(np.int64)
    ks = np.asarray(recall_ks, np.int64).reshape(-1)
    out["recall"] = np.full((q, ks.shape[0]), np.nan)
    for b in np.nonzero(out["n_rel"])[0]:
        rel_s = np.sort(scores[b, rel[b]])[::-1]  # (R,) descending
        n_rel = rel_s.shape[0]
        # items (relevant or not) with score >= s, self excluded
        ge_all = n - np.searchsorted(sorted_scores[b], rel_s, side="left")
        if has_self[b]:
            ge_all = ge_all - (self_score[b] >= rel_s)
        # relevant items with score >= s (ascending copy for searchsorted)
        ge_rel = n_rel - np.searchsorted(rel_s[::-1], rel_s, side="left")
        i = np.arange(1, n_rel + 1)
        ranks = i + (ge_all - ge_rel)  # pessimistic: tied irrelevant items first
        out["ap"][b] = np.mean(i / ranks)
        out["r1"][b] = ranks[0]
        out["p_at_k"][b] = np.count_nonzero(ranks <= k) / k
        out["p_at_10"][b] = np.count_nonzero(ranks <= 10) / 10
        if ks.size:
            out["recall"][b] = (ranks[None, :] <= ks[:, None]).sum(axis=1) / n_rel
    return out


def summarise(per_query: dict[str, np.ndarray], *, k: int = 10, n_items: int,
              seconds: float, keep_per_query: bool = False,
              recall_fractions: Sequence[float] = ()) -> dict:
    """Reduce per-query arrays from :func:`rank_block` to the metrics dict.

    Args:
        per_query: dict of (Q,) arrays as returned by :func:`rank_block`.
        k: cut-off used for ``p_at_k``.
        n_items: number of ranked items N.
        seconds: wall time to report.
        keep_per_query: also return the per-query arrays under ``per_query``.
        recall_fractions: the catalogue shares behind ``per_query["recall"]``
            columns (as given to :func:`recall_cutoffs`); empty = no recall.

    Returns:
        dict with ``map``, ``mr1``, ``p_at_10``, ``p_at_{k}``, ``mrr``,
        ``hit_at_10``, ``n_queries`` (queries with >= 1 relevant item),
        ``n_items``, ``seconds``, ``recall_at_k`` (a list of
        ``{"fraction", "k", "recall"}``, only with ``recall_fractions``)
        (and optionally ``per_query``).
    """
    valid = per_query["n_rel"] > 0
    nq = int(valid.sum())

    def mean(x):
        return float(np.mean(x[valid])) if nq else float("nan")

    r1 = per_query["r1"]
    res = {
        "map": mean(per_query["ap"]),
        "mr1": mean(r1),
        "p_at_10": mean(per_query["p_at_10"]),
        f"p_at_{k}": mean(per_query["p_at_k"]),
        "mrr": mean(1.0 / np.where(valid, r1, 1.0)),
        "hit_at_10": mean((np.where(valid, r1, np.inf) <= 10).astype(np.float64)),
        "n_queries": nq,
        "n_items": int(n_items),
        "seconds": float(seconds),
    }
    if len(recall_fractions):
        rec = per_query["recall"]  # (Q, F)
        ks = recall_cutoffs(n_items, recall_fractions)
        res["recall_at_k"] = [
            {"fraction": float(f), "k": int(kk),
             "recall": float(np.mean(rec[valid, j])) if nq else float("nan")}
            for j, (f, kk) in enumerate(zip(recall_fractions, ks))
        ]
    if keep_per_query:
        res["per_query"] = per_query
    return res


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def metrics_from_scores(
    scores: np.ndarray,
    query_labels: Sequence,
    item_labels: Sequence,
    *,
    query_rows: Sequence[int] | None = None,
    k: int = 10,
    per_query: bool = False,
    recall_fractions: Sequence[float] = (),
) -> dict:
    """Metrics of one dense score block (e.g. a re-ranker's or a baseline's).

    Args:
        scores: (Q, N) float scores, higher = more similar.
        query_labels: (Q,) work ids of the queries.
        item_labels: (N,) work ids of the items.
        query_rows: (Q,) row of each query among the items (its self-match is
            excluded), -1 for a query that is not an item; None = no exclusion.
        k: cut-off of ``p_at_k``.
        per_query: also return per-query arrays.
        recall_fractions: catalogue shares of a ``recall_at_k`` entry (empty = none).

    Returns:
        The metrics dict of :func:`summarise`.
    """
    t0 = time.perf_counter()
    q_labels = np.asarray(query_labels)
    i_labels = np.asarray(item_labels)
    codes = encode_labels(np.concatenate([q_labels, i_labels]))
    ks = recall_cutoffs(len(i_labels), recall_fractions) if len(recall_fractions) else ()
    pq = rank_block(scores, codes[: len(q_labels)], codes[len(q_labels):],
                    query_rows, k=k, recall_ks=ks)
    return summarise(pq, k=k, n_items=len(i_labels), seconds=time.perf_counter() - t0,
                     keep_per_query=per_query, recall_fractions=recall_fractions)


def blocked_metrics(
    score_block: Callable[[int, int], np.ndarray],
    labels: Sequence,
    *,
    k: int = 10,
    block: int = 1024,
    exclude_self: bool = True,
    progress: bool = False,
    per_query: bool = False,
    recall_fractions: Sequence[float] = RECALL_FRACTIONS,
) -> dict:
    """All-vs-all metrics from a function producing score blocks.

    Args:
        score_block: ``f(start, stop) -> (stop - start, N)`` scores of queries
            ``start:stop`` (which are items ``start:stop``) against all N items.
        labels: (N,) work ids.
        k, block, exclude_self, progress, per_query, recall_fractions: as in
            :func:`retrieval_metrics`.

    Returns:
        The metrics dict of :func:`summarise`.
    """
    t0 = time.perf_counter()
    codes = encode_labels(labels)
    n = codes.shape[0]
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    starts = range(0, n, block)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, total=(n + block - 1) // block, desc="ranking", unit="block")
    ks = recall_cutoffs(n, recall_fractions) if len(recall_fractions) and n else np.zeros(0, np.int64)
    parts = []
    for start in starts:
        stop = min(start + block, n)
        rows = np.arange(start, stop) if exclude_self else None
        parts.append(rank_block(score_block(start, stop), codes[start:stop], codes, rows, k=k, recall_ks=ks))
    if not parts:
        parts = [{key: np.zeros(0) for key in ("ap", "r1", "p_at_k", "p_at_10")}
                 | {"n_rel": np.zeros(0, dtype=np.int64), "recall": np.zeros((0, len(ks)))}]
    return summarise(_concat(parts), k=k, n_items=n, seconds=time.perf_counter() - t0,
                     keep_per_query=per_query, recall_fractions=recall_fractions if n else ())


def retrieval_metrics(
    vectors: np.ndarray,
    labels: Sequence,
    *,
    k: int = 10,
    block: int = 1024,
    exclude_self: bool = True,
    progress: bool = False,
    per_query: bool = False,
    recall_fractions: Sequence[float] = RECALL_FRACTIONS,
) -> dict:
    """All-vs-all MAP / MR1 / P@10 (and recall at K) of embeddings under cosine similarity.

    Memory is about ``block * N * 10`` bytes (scores, their sorted copy, the
    relevance mask and NaN check): 150 MB at N=15,000, 500 MB at N=50,000
    with block=1024.

    Args:
        vectors: (N, D) float32, L2-normalised rows (inner product = cosine).
        labels: (N,) work ids (str or int).
        k: cut-off of the extra ``p_at_{k}`` entry (``p_at_10`` is always there).
        block: queries per matmul block.
        exclude_self: remove each query from its own ranking.
        progress: show a tqdm bar over blocks.
        per_query: also return per-query arrays (``ap``, ``r1``, ...).
        recall_fractions: catalogue shares of the ``recall_at_k`` entry
            (empty = none).

    Returns:
        dict: ``map``, ``mr1``, ``p_at_10``, ``p_at_{k}``, ``mrr``,
        ``hit_at_10``, ``n_queries``, ``n_items``, ``seconds``,
        ``recall_at_k`` (+ ``per_query``).
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be (N, D), got shape {vectors.shape}")
    if len(labels) != vectors.shape[0]:
        raise ValueError(f"{len(labels)} labels for {vectors.shape[0]} vectors")

    def score_block(start: int, stop: int) -> np.ndarray:
        return vectors[start:stop] @ vectors.T  # (B, N)

    return blocked_metrics(score_block, labels, k=k, block=block,
                           exclude_self=exclude_self, progress=progress,
                           per_query=per_query, recall_fractions=recall_fractions)


def recall_at_k(
    vectors: np.ndarray,
    labels: Sequence,
    *,
    fractions: Sequence[float] = RECALL_FRACTIONS,
    block: int = 1024,
) -> list[dict]:
    """First-stage recall at K, all against all under cosine: the share of each
    query's versions inside its K-item shortlist, averaged over the queries
    with a version. Blocked: memory ``O(block * N)``.

    Args:
        vectors: (N, D) float32 unit rows.
        labels: (N,) work ids.
        fractions: shortlist sizes as shares of the catalogue
            (K = ``max(1, round(f * N))``).
        block: queries per block.

    Returns:
        list of ``{"fraction", "k", "recall"}``, one per fraction, in order.
    """
    if not len(fractions):
        raise ValueError("give at least one recall fraction")
    return retrieval_metrics(vectors, labels, block=block, recall_fractions=fractions)["recall_at_k"]


def format_recall(recall: Sequence[dict]) -> str:
    """One line for a terminal: ``recall@K 0.5% (15) 0.412  1% (30) 0.503 ...``."""
    return "recall@K " + "  ".join(f"{100 * r['fraction']:g}% ({r['k']}) {r['recall']:.3f}" for r in recall)
