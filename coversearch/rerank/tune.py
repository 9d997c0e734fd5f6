"""Offline: choose the re-rank settings on validation works (never on the
evaluated set).

The expensive part -- aligning each validation query against its shortlist,
at the full rate and at the coarse rate -- is done once
(:func:`aligned_shortlists`); every setting of the grid then only replays
those alignments through the query-time ordering
(:func:`coversearch.rerank.cascade.cascade_order`, the same code as
``query --rerank``), so a grid point costs milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from coversearch.align import AlignConfig
from coversearch.errors import DataError
from coversearch.rerank.cascade import (
    DEFAULT,
    align_shortlist,
    cascade_order,
    cosine_shortlist,
    reranked_full_scores,
)
from coversearch.rerank.config import QMAX_NORMS, RerankConfig


@dataclass(frozen=True)
class AlignedShortlist:
    """One validation query's shortlist with its alignments, ready for tuning.

    Attributes:
        query_row: the query's own item row (-1 if not an item).
        rows: (K,) int64 shortlist rows (no -1), in cosine order.
        cosine: (K,) float64 cosine similarities.
        raw: (K,) float64 raw Qmax scores at the full rate.
        t_query: query length at the full alignment rate.
        t_cands: (K,) int64 candidate lengths at the full alignment rate.
        coarse_raw, coarse_t_query, coarse_t_cands: the same at the coarse
            rate (None when the coarse pass was not computed).
    """

    query_row: int
    rows: np.ndarray
    cosine: np.ndarray
    raw: np.ndarray
    t_query: int
    t_cands: np.ndarray
    coarse_raw: np.ndarray | None = None
    coarse_t_query: int = 0
    coarse_t_cands: np.ndarray | None = None


def replay(s: AlignedShortlist, config: RerankConfig, shortlist: int | None = None):
    """The query-time cascade on stored alignments: :class:`Reranked` of the
    first ``shortlist`` (None = all) rows of ``s``."""
    k = len(s.rows) if shortlist is None else min(shortlist, len(s.rows))

    def fine(pos):
        return s.raw[pos], s.t_query, s.t_cands[pos]

    def coarse(pos):
        if s.coarse_raw is None:
            raise DataError("this setting needs the coarse pass, but the validation shortlists were aligned without it")
        return s.coarse_raw[pos], s.coarse_t_query, s.coarse_t_cands[pos]

    return cascade_order(s.rows[:k], s.cosine[:k], coarse, fine, config)


def evaluate_setting(
    shortlists: Sequence[AlignedShortlist],
    cosine_all: np.ndarray,
    labels: Sequence,
    *,
    weight: float = DEFAULT.weight,
    norm: str = DEFAULT.norm,
    shortlist: int | None = None,
    config: RerankConfig | None = None,
) -> dict:
    """All-items retrieval metrics after re-ranking each query's shortlist.

    Args:
        shortlists: Q aligned shortlists (cosine order, the longest K needed).
        cosine_all: (Q, N) cosine of each query to every item.
        labels: (N,) work ids of the items.
        weight, norm: fusion settings (ignored when ``config`` is given).
        shortlist: use only the first K1 of each shortlist (None = all).
        config: the full cascade setting; None = single pass (K2 = K1) with
            ``weight`` and ``norm``.

    Returns:
        The metrics dict of :func:`coversearch.evaluate.retrieval.metrics_from_scores`.
    """
    from coversearch.evaluate.retrieval import metrics_from_scores

    labels = np.asarray(labels)
    if config is None:
        config = RerankConfig(weight=weight, norm=norm, fine=max(1, max((len(s.rows) for s in shortlists), default=1)))
    scores = np.empty(np.shape(cosine_all), np.float64)
    for q, s in enumerate(shortlists):
        scores[q] = reranked_full_scores(cosine_all[q], replay(s, config, shortlist).rows)
    q_rows = np.array([s.query_row for s in shortlists], np.int64)
    if (q_rows < 0).any():
        raise DataError("every validation query must be an item (query_row >= 0) to know its work")
    return metrics_from_scores(scores, labels[q_rows], labels, query_rows=q_rows)


def tune(
    shortlists: Sequence[AlignedShortlist],
    cosine_all: np.ndarray,
    labels: Sequence,
    *,
    weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    norms: Sequence[str] = QMAX_NORMS,
    shortlist_sizes: Sequence[int | None] = (None,),
    fine_sizes: Sequence[int | None] = (None,),
    base: RerankConfig = DEFAULT,
) -> list[dict]:
    """Grid of (norm, weight, K1, K2) on validation queries, best MAP first.

    Args:
        shortlists: aligned validation shortlists (coarse alignments needed
            when some K2 < K1).
        cosine_all: (Q, N) cosines of the queries.
        labels: (N,) work ids.
        weights, norms: fusion grid.
        shortlist_sizes: K1 values (None = the whole stored shortlist).
        fine_sizes: K2 values (None = K1: no coarse pass).
        base: the other settings (alignment configs).

    Returns:
        list of {"norm", "weight", "shortlist", "fine", "map", "mr1", "p_at_10"},
        sorted by MAP desc, then MR1 asc, then smaller weight (closer to the
        embedding), smaller K1 and K2 (cheaper).
    """
    longest = max((len(s.rows) for s in shortlists), default=1)
    out = []
    for k1 in shortlist_sizes:
        for k2 in fine_sizes:
            fine = k2 or (k1 or longest)
            for norm in norms:
                for w in weights:
                    cfg = dataclasses.replace(base, weight=float(w), norm=norm, fine=max(1, int(fine)))
                    m = evaluate_setting(shortlists, cosine_all, labels, shortlist=k1, config=cfg)
                    out.append({"norm": norm, "weight": float(w), "shortlist": k1, "fine": k2,
                                "map": float(m["map"]), "mr1": float(m["mr1"]), "p_at_10": float(m["p_at_10"])})
    out.sort(key=lambda r: (-r["map"], r["mr1"], r["weight"], r["shortlist"] or 0, r["fine"] or 0))
    return out


def aligned_shortlists(
    cosine_all: np.ndarray,
    query_rows: Sequence[int],
    sequence_of: Callable[[int], np.ndarray],
    *,
    shortlist: int,
    config: AlignConfig = DEFAULT.align,
    coarse: AlignConfig | None = None,
    jobs: int = 1,
) -> list[AlignedShortlist]:
    """Cosine shortlists of validation queries, aligned once, for :func:`tune`.

    Costs ``len(query_rows) * shortlist`` alignments (not all pairs), twice
    with ``coarse``.

    Args:
        cosine_all: (Q, N) cosine of each query to every item.
        query_rows: (Q,) item row of each query (excluded from its shortlist).
        sequence_of: ``row -> (T, 12)`` prepared sequence (e.g. the cache).
        shortlist: K, the largest shortlist to be tuned.
        config: the full alignment.
        coarse: also align at this coarse setting (None = not).
        jobs: cores.

    Returns:
        Q :class:`AlignedShortlist` in cosine order.
    """
    out = []
    for q, qrow in enumerate(query_rows):
        c = np.asarray(cosine_all[q], np.float64)
        rows = cosine_shortlist(c, int(qrow), shortlist)
        qseq = sequence_of(int(qrow))
        cands = [sequence_of(int(r)) for r in rows]
        raw, t_q, t_c = align_shortlist(qseq, cands, config=config, jobs=jobs)
        extra = {}
        if coarse is not None:
            craw, ct_q, ct_c = align_shortlist(qseq, cands, config=coarse, jobs=jobs)
            extra = {"coarse_raw": craw, "coarse_t_query": ct_q, "coarse_t_cands": ct_c}
        out.append(AlignedShortlist(int(qrow), rows.astype(np.int64), c[rows], raw, t_q, t_c, **extra))
    return out


def tune_on_validation(
    vectors: np.ndarray,
    labels: Sequence,
    sequence_of: Callable[[int], np.ndarray],
    *,
    base: RerankConfig = DEFAULT,
    n_queries: int = 150,
    fine_sizes: Sequence[int] = (50, 100, 200),
    weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    norms: Sequence[str] = QMAX_NORMS,
    seed: int = 0,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """Choose weight, norm and K2 on validation works; keep ``base``'s K1 rule
    and alignment configs.

    Args:
        vectors: (N, D) unit embeddings of the validation set.
        labels: (N,) work ids.
        sequence_of: ``row -> (T, 12)`` prepared sequence.
        base: the settings not tuned here.
        n_queries: seeded queries (with a version in the set) to align.
        fine_sizes: K2 values tried.
        weights, norms: fusion grid.
        seed: query sample seed.
        jobs: cores.
        log: progress lines.

    Returns:
        ``{"config": RerankConfig dict, "validation": {n_queries, n_items,
        shortlist, best, embedding_only, grid (top 20)}}``.
    """
    labels = np.asarray(labels)
    _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cand = np.flatnonzero(counts[inv] >= 2)
    if not len(cand):
        raise DataError("the validation data has no work with two versions")
    q = np.sort(np.random.default_rng(seed).choice(cand, min(n_queries, len(cand)), replace=False))
    cos = vectors[q] @ vectors.T  # (Q, N)
    k1 = base.first_stage_k(len(labels) - 1)
    log(f"aligning {len(q)} validation queries x {k1} candidates (coarse and full rate)")
    sl = aligned_shortlists(cos, q, sequence_of, shortlist=k1, config=base.align, coarse=base.coarse, jobs=jobs)
    grid = tune(sl, cos, labels, weights=weights, norms=norms,
                fine_sizes=tuple(k for k in fine_sizes if k < k1) + (None,), base=base)
    best = grid[0]
    emb_only = next(g for g in grid if g["weight"] == 0.0)
    cfg = dataclasses.replace(base, weight=best["weight"], norm=best["norm"], fine=int(best["fine"] or k1))
    return {"config": cfg.to_dict(),
            "validation": {"n_queries": int(len(q)), "n_items": int(len(labels)), "shortlist": int(k1),
                           "best": best, "embedding_only": emb_only, "grid": grid[:20]}}
