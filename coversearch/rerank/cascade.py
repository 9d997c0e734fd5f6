"""Second stage of retrieval, at query time: re-order a cosine shortlist by alignment.

The index proposes K1 performances by cosine (K1 scales with the catalogue,
:meth:`RerankConfig.first_stage_k`); :func:`score_query` -- the one function
``query --rerank``, ``evaluate --rerank`` and the benchmarks call -- re-orders
them in a cascade:

1. coarse: every candidate is aligned at a lower frame rate
   (``config.coarse``, one compiled batch over all cores:
   :func:`coversearch.align.batch.qmax_batch`) and fused with its cosine;
2. fine: the best K2 (``config.fine``) by that score are aligned at the full
   rate (``config.align``, acoss's Serra09) and fused again; they lead the
   ranking, the other K1 - K2 follow in coarse order.

Only the order changes: the eligible items are exactly the shortlist the
first stage returned (minus FAISS's -1 padding when K exceeds the index), so
a filter or an exclusion applied there is never undone here.

Fusion is ``(1 - weight) * cosine + weight * qmax_norm`` with ``qmax_norm``
the raw Qmax scaled by one of :data:`QMAX_NORMS`:

* ``min_len``: / min(T_query, T_candidate) at the alignment rate -- the
  fraction of the shorter piece that aligns, in [0, 1) like a cosine;
* ``sqrt_prod``: / (T_q * T_c) ** 0.25, a symmetric form of acoss's
  ``/ sqrt(T_ref)``, then / 10 to bring it near the cosine's range;
* ``query_max``: / the largest raw Qmax in this shortlist, so the best
  aligned candidate gets 1 (scale-free, but depends on the shortlist).

Every default lives in :class:`RerankConfig`; choosing them is offline work
(:mod:`coversearch.rerank.tune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from coversearch.align import AlignConfig
from coversearch.align.batch import qmax_batch
from coversearch.errors import DataError
from coversearch.rerank.config import QMAX_NORMS, RerankConfig, check_norm, check_weight

DEFAULT = RerankConfig()


def fuse(cosine: np.ndarray, qmax_norm: np.ndarray, weight: float) -> np.ndarray:
    """Fused score, non-decreasing in both inputs (strictly in each when 0 < weight < 1).

    Args:
        cosine: (K,) cosine similarities.
        qmax_norm: (K,) normalised alignment scores.
        weight: in [0, 1].

    Returns:
        (K,) float64 ``(1 - weight) * cosine + weight * qmax_norm``.
    """
    w = check_weight(weight)
    return (1.0 - w) * np.asarray(cosine, np.float64) + w * np.asarray(qmax_norm, np.float64)


def normalise_qmax(raw: np.ndarray, t_query: int, t_cands: np.ndarray, norm: str) -> np.ndarray:
    """Scale raw Qmax scores of one query's shortlist.

    Args:
        raw: (K,) raw Qmax (>= 0).
        t_query: query length at the alignment rate.
        t_cands: (K,) candidate lengths at the alignment rate.
        norm: one of :data:`QMAX_NORMS`.

    Returns:
        (K,) float64.
    """
    check_norm(norm)
    raw = np.asarray(raw, np.float64)
    t_cands = np.maximum(np.asarray(t_cands, np.float64), 1.0)
    if norm == "min_len":
        return raw / np.minimum(float(t_query), t_cands)
    if norm == "sqrt_prod":
        # /10: at T ~ 350 a strong cover has raw/(T^0.5) ~ 5-15; keeps it near cosine scale
        return raw / (10.0 * (float(t_query) * t_cands) ** 0.25)
    top = raw.max() if raw.size else 0.0  # query_max
    return raw / top if top > 0 else np.zeros_like(raw)


def order(rows: np.ndarray, cosine: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """Deterministic ranking: fused desc, then cosine desc, then row asc.

    Args:
        rows: (K,) int64 item rows.
        cosine: (K,) cosine similarities.
        fused: (K,) fused scores.

    Returns:
        (K,) int64 permutation indices into the inputs.
    """
    # lexsort sorts by the last key first
    return np.lexsort((np.asarray(rows), -np.asarray(cosine, np.float64), -np.asarray(fused, np.float64)))


def _valid(shortlist_rows, cosine_sims):
    rows = np.asarray(shortlist_rows, np.int64).reshape(-1)
    cos = np.asarray(cosine_sims, np.float64).reshape(-1)
    if rows.shape != cos.shape:
        raise DataError(f"shortlist rows {rows.shape} and cosine similarities {cos.shape} differ in length")
    keep = rows >= 0  # FAISS pads with -1 when K exceeds the index
    if len(np.unique(rows[keep])) != int(keep.sum()):
        raise DataError("shortlist rows contain duplicates")
    return rows, cos, keep


def align_shortlist(
    query_seq: np.ndarray,
    candidate_seqs: Sequence[np.ndarray],
    *,
    config: AlignConfig = DEFAULT.align,
    jobs: int = 1,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Raw Qmax of the query against each candidate, with the lengths norms need.

    Args:
        query_seq: (T, 12) float32 at the prepared rate.
        candidate_seqs: K sequences (T_k, 12) float32 at the prepared rate.
        config: alignment parameters (``norm`` is ignored: scores are raw).
        jobs: cores (one compiled batch).

    Returns:
        (raw (K,) float64, T_query, T_cands (K,) int64), lengths at the alignment rate.
    """
    return qmax_batch(query_seq, candidate_seqs, config=config, jobs=jobs)


@dataclass(frozen=True)
class Reranked:
    """One query's re-ranked shortlist, best first.

    Attributes:
        rows: (K',) int64 item rows; ``set(rows)`` = the valid shortlist rows.
        score: (K',) float64 fused score of the pass that placed the item
            (non-increasing within each pass).
        stage: (K',) str ``fine``, ``coarse`` or ``cosine`` (weight 0).
        cosine: (K',) float64 first-stage cosine.
    """

    rows: np.ndarray
    score: np.ndarray
    stage: np.ndarray
    cosine: np.ndarray


Aligner = Callable[[np.ndarray], tuple[np.ndarray, int, np.ndarray]]


def cascade_order(rows: np.ndarray, cosine: np.ndarray, align_coarse: Aligner, align_fine: Aligner,
                  config: RerankConfig = DEFAULT) -> Reranked:
    """The cascade's ordering, given how to align: the pure core of
    :func:`score_query`, shared with offline tuning (which replays stored
    alignments instead of computing them).

    Args:
        rows: (K1,) int64 valid shortlist rows (no -1, no duplicates).
        cosine: (K1,) float64 their cosines.
        align_coarse, align_fine: ``f(positions) -> (raw (P,), T_query,
            T_cands (P,))`` aligning ``rows[positions]`` with ``config.coarse``
            and ``config.align``.
        config: weight, norm and K2.

    Returns:
        :class:`Reranked`, best first.
    """
    w = config.weight
    if w == 0.0 or rows.size == 0:
        perm = order(rows, cosine, cosine)
        return Reranked(rows[perm], cosine[perm], np.full(len(rows), "cosine"), cosine[perm])

    def fused_pass(align, pos):
        raw, t_q, t_c = align(pos)
        fused = fuse(cosine[pos], normalise_qmax(raw, t_q, t_c, config.norm), w)
        return fused, order(rows[pos], cosine[pos], fused)

    everything = np.arange(len(rows))
    if len(rows) > config.fine:
        fused_c, perm_c = fused_pass(align_coarse, everything)
        top, rest = perm_c[: config.fine], perm_c[config.fine:]
        rest_score = fused_c[rest]
    else:
        top, rest, rest_score = everything, np.zeros(0, np.int64), np.zeros(0)
    fused_f, perm_f = fused_pass(align_fine, top)
    first = top[perm_f]
    return Reranked(
        rows=np.concatenate([rows[first], rows[rest]]),
        score=np.concatenate([fused_f[perm_f], rest_score]),
        stage=np.array(["fine"] * len(first) + ["coarse"] * len(rest)),
        cosine=np.concatenate([cosine[first], cosine[rest]]),
    )


def score_query(
    shortlist_rows: np.ndarray,
    cosine_sims: np.ndarray,
    query_seq: np.ndarray,
    candidate_seqs: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    *,
    config: RerankConfig = DEFAULT,
    jobs: int = 1,
) -> Reranked:
    """Re-order one query's first-stage shortlist with the cascade.

    Args:
        shortlist_rows: (K1,) int64 index rows from the first stage; -1
            entries (FAISS padding) are dropped.
        cosine_sims: (K1,) their cosine similarities.
        query_seq: (T, 12) float32 query chroma at the prepared rate.
        candidate_seqs: K1 (T_k, 12) sequences aligned with ``shortlist_rows``
            (entries at -1 rows are ignored and may be None), or a function
            ``row -> (T, 12)`` (e.g. the index folder's sequences).
        config: weight, norm, K2 and both alignment configs.
        jobs: cores for the alignment batches.

    Returns:
        :class:`Reranked`, best first.

    Raises:
        ConfigError: bad config values.
        DataError: mismatched lengths, duplicate rows, or a bad sequence.
    """
    rows, cos, keep = _valid(shortlist_rows, cosine_sims)
    if not callable(candidate_seqs) and len(candidate_seqs) != len(rows):
        raise DataError(f"{len(candidate_seqs)} candidate sequences for {len(rows)} shortlist rows")
    idx = np.flatnonzero(keep)
    if callable(candidate_seqs):
        seqs = None
        seq_of = candidate_seqs
    else:
        seqs = [candidate_seqs[i] for i in idx]
    rows, cos = rows[idx], cos[idx]

    def aligner(cfg: AlignConfig) -> Aligner:
        def align(pos):
            cands = [seqs[i] for i in pos] if seqs is not None else [seq_of(int(rows[i])) for i in pos]
            return align_shortlist(query_seq, cands, config=cfg, jobs=jobs)
        return align

    return cascade_order(rows, cos, aligner(config.coarse), aligner(config.align), config)


def rerank(
    shortlist_rows: np.ndarray,
    cosine_sims: np.ndarray,
    query_seq: np.ndarray,
    candidate_seqs: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    *,
    weight: float = DEFAULT.weight,
    norm: str = DEFAULT.norm,
    config: AlignConfig = DEFAULT.align,
    jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Single-pass re-rank (full alignment of every shortlisted item): the
    cascade with K2 = K1. Kept for callers that fix weight and norm.

    Returns:
        (rows (K',) int64, fused (K',) float64), best first; K' = number of
        rows >= 0, and ``set(rows) == set(valid shortlist_rows)``.
    """
    n = max(1, len(np.asarray(shortlist_rows).reshape(-1)))
    cfg = RerankConfig(weight=check_weight(weight), norm=check_norm(norm), align=config, fine=n, shortlist=n)
    r = score_query(shortlist_rows, cosine_sims, query_seq, candidate_seqs, config=cfg, jobs=jobs)
    return r.rows, r.score


def reranked_full_scores(cosine_all: np.ndarray, reranked_rows: np.ndarray) -> np.ndarray:
    """Scores over all N items whose ranking is: the re-ranked shortlist, then
    every other item by cosine -- for the all-items evaluation protocol.

    Args:
        cosine_all: (N,) cosine of the query to every item (the query's own
            row may hold anything; the evaluator excludes it).
        reranked_rows: (K,) rows in their re-ranked order, best first.

    Returns:
        (N,) float64; shortlisted items score above every other item.
    """
    out = np.asarray(cosine_all, np.float64).copy()
    k = len(reranked_rows)
    if k:
        base = (np.nanmax(out) if out.size else 0.0) + 1.0
        out[np.asarray(reranked_rows, np.int64)] = base + np.arange(k, 0, -1, dtype=np.float64)
    return out


def cosine_shortlist(cosine: np.ndarray, query_row: int, k: int) -> np.ndarray:
    """The ``k`` rows of highest cosine, the query's own row excluded; ties by row.

    Args:
        cosine: (N,) cosine of the query to every item.
        query_row: the query's item row, or -1 if it is not an item.
        k: shortlist size (clamped to the items available).

    Returns:
        (min(k, N - 1 or N),) int64 rows, best first.
    """
    c = np.asarray(cosine, np.float64).copy()
    if query_row >= 0:
        c[query_row] = -np.inf
    n = min(k, len(c) - (query_row >= 0))
    if n <= 0:
        return np.zeros(0, np.int64)
    if n < len(c) // 4:  # partial selection first: a full lexsort of 15,000 per query is the slow part
        cand = np.argpartition(-c, n - 1)[:n]
        thr = c[cand].min()
        cand = np.flatnonzero(c >= thr)  # keep every tie at the boundary, so ties still break by row
        return cand[np.lexsort((cand, -c[cand]))][:n].astype(np.int64)
    return np.lexsort((np.arange(len(c)), -c))[:n].astype(np.int64)


__all__ = ["QMAX_NORMS", "RerankConfig", "Reranked", "score_query", "cascade_order", "rerank", "fuse", "normalise_qmax", "order",
           "align_shortlist", "reranked_full_scores", "cosine_shortlist"]
