"""Second stage of two-stage retrieval: re-rank an embedding shortlist by alignment.

The index proposes the K nearest performances by cosine; the Serra09
alignment (:mod:`coversearch.align`) scores the query against each of them,
and the final score fuses both. Only the order of the shortlist changes:
the set of eligible items is exactly the shortlist the index returned
(minus FAISS's -1 padding when K exceeds the index), so a filter or an
exclusion applied by the first stage is never undone here.

Fusion is ``(1 - weight) * cosine + weight * qmax_norm`` with ``qmax_norm``
the raw Qmax scaled by one of :data:`QMAX_NORMS`:

* ``min_len``: / min(T_query, T_candidate) at the alignment rate -- the
  fraction of the shorter piece that aligns, in [0, 1) like a cosine;
* ``sqrt_prod``: / (T_q * T_c) ** 0.25, a symmetric form of acoss's
  ``/ sqrt(T_ref)``, then / 10 to bring it near the cosine's range;
* ``query_max``: / the largest raw Qmax in this shortlist, so the best
  aligned candidate gets 1 (scale-free, but depends on the shortlist).

Which norm, which weight and which K are defaults is decided on validation
works by :func:`tune` (never on the evaluated set) and stored beside the
index as a :class:`RerankConfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from coversearch.align import AlignConfig, qmax_scores_one_to_many
from coversearch.errors import ConfigError, DataError

QMAX_NORMS = ("min_len", "sqrt_prod", "query_max")


@dataclass(frozen=True)
class RerankConfig:
    """How the re-rank stage runs; stored beside an index as JSON.

    Attributes:
        shortlist: K, how many cosine neighbours are re-scored.
        weight: fusion weight of the normalised Qmax, in [0, 1]
            (0 = embedding order, 1 = alignment order, cosine breaks ties).
        norm: Qmax normalisation, one of :data:`QMAX_NORMS`.
        align: the alignment parameters (its own ``norm`` is ignored: the
            raw Qmax is normalised here).
    """

    # sqrt_prod at w 0.5, K 100: chosen on the validation works of
    # benchmarks/bench_alignment.py. With the shipped encoder 34db6573, that
    # 406-item validation split preferred min_len (0.796 vs 0.786 standard,
    # 0.546 vs 0.534 wide), but min_len measured worse on the 3,000-item
    # benchmark-structure sets (0.379 vs 0.398 standard), 7x more items, so
    # the default stays sqrt_prod (README, Results). `coversearch
    # tune-rerank` re-tunes per index and saves rerank.json beside it
    shortlist: int = 100
    weight: float = 0.5
    norm: str = "sqrt_prod"
    align: AlignConfig = field(default_factory=AlignConfig)

    def __post_init__(self):
        if self.shortlist < 1:
            raise ConfigError(f"shortlist must be >= 1, got {self.shortlist}")
        check_weight(self.weight)
        if self.norm not in QMAX_NORMS:
            raise ConfigError(f"rerank norm must be one of {', '.join(QMAX_NORMS)}, got {self.norm!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (the alignment config nested)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RerankConfig":
        """Inverse of :meth:`to_dict`; unknown keys are a ConfigError."""
        try:
            d = dict(d)
            align = AlignConfig(**d.pop("align", {}))
            return cls(align=align, **d)
        except TypeError as e:
            raise ConfigError(f"invalid rerank config: {e}") from None


def check_weight(weight: float) -> float:
    """Return ``weight`` if it is in [0, 1], else raise ConfigError."""
    if not 0.0 <= float(weight) <= 1.0:
        raise ConfigError(f"rerank weight must be in [0, 1], got {weight}")
    return float(weight)


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
    raw = np.asarray(raw, np.float64)
    t_cands = np.maximum(np.asarray(t_cands, np.float64), 1.0)
    if norm == "min_len":
        return raw / np.minimum(float(t_query), t_cands)
    if norm == "sqrt_prod":
        # /10: at T ~ 350 a strong cover has raw/(T^0.5) ~ 5-15; keeps it near cosine scale
        return raw / (10.0 * (float(t_query) * t_cands) ** 0.25)
    if norm == "query_max":
        top = raw.max() if raw.size else 0.0
        return raw / top if top > 0 else np.zeros_like(raw)
    raise ConfigError(f"rerank norm must be one of {', '.join(QMAX_NORMS)}, got {norm!r}")


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
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Raw Qmax of the query against each candidate, with the lengths norms need.

    Args:
        query_seq: (T, 12) float32 at the prepared rate.
        candidate_seqs: K sequences (T_k, 12) float32 at the prepared rate.
        config: alignment parameters (``norm`` is overridden to "none").
        jobs: threads.

    Returns:
        (raw (K,) float64, T_query, T_cands (K,) int64), lengths at the alignment rate.
    """
    cfg = AlignConfig(**{**asdict(config), "norm": "none"})
    raw = qmax_scores_one_to_many(query_seq, candidate_seqs, config=cfg, jobs=jobs)
    t_q = -(-np.asarray(query_seq).shape[0] // cfg.downsample)
    t_c = np.array([-(-np.asarray(s).shape[0] // cfg.downsample) for s in candidate_seqs], np.int64)
    return raw, int(t_q), t_c


def rerank(
    shortlist_rows: np.ndarray,
    cosine_sims: np.ndarray,
    query_seq: np.ndarray,
    candidate_seqs: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    *,
    weight: float = 0.5,
    norm: str = "min_len",
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-order one query's shortlist by fused cosine + alignment score.

    Args:
        shortlist_rows: (K,) int64 index rows from the first stage; -1 entries
            (FAISS padding when K exceeds the index) are dropped.
        cosine_sims: (K,) their cosine similarities.
        query_seq: (T, 12) float32 query chroma at the prepared rate.
        candidate_seqs: K (T_k, 12) sequences aligned with ``shortlist_rows``
            (entries at -1 rows are ignored and may be None), or a function
            ``row -> (T, 12)`` (e.g. reading the prepared cache).
        weight: fusion weight in [0, 1]; 0 skips the alignments entirely.
        norm: Qmax normalisation, one of :data:`QMAX_NORMS`.
        config: alignment parameters.
        jobs: alignment threads.

    Returns:
        (rows (K',) int64, fused (K',) float64), best first; K' = number of
        rows >= 0, and ``set(rows) == set(valid shortlist_rows)``.

    Raises:
        ConfigError: weight outside [0, 1] or unknown norm.
        DataError: mismatched lengths, duplicate rows, or a bad sequence.
    """
    check_weight(weight)
    if norm not in QMAX_NORMS:
        raise ConfigError(f"rerank norm must be one of {', '.join(QMAX_NORMS)}, got {norm!r}")
    rows, cos, keep = _valid(shortlist_rows, cosine_sims)
    if not callable(candidate_seqs) and len(candidate_seqs) != len(rows):
        raise DataError(f"{len(candidate_seqs)} candidate sequences for {len(rows)} shortlist rows")
    idx = np.flatnonzero(keep)
    rows, cos = rows[idx], cos[idx]
    if weight == 0.0 or rows.size == 0:
        qn = np.zeros_like(cos)
    else:
        seqs = [candidate_seqs(int(r)) for r in rows] if callable(candidate_seqs) else [candidate_seqs[i] for i in idx]
        raw, t_q, t_c = align_shortlist(query_seq, seqs, config=config, jobs=jobs)
        qn = normalise_qmax(raw, t_q, t_c, norm)
    fused = fuse(cos, qn, weight)
    perm = order(rows, cos, fused)
    return rows[perm], fused[perm]


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


@dataclass(frozen=True)
class AlignedShortlist:
    """One validation query's shortlist with its alignments, ready for tuning.

    Attributes:
        query_row: the query's own item row (-1 if not an item).
        rows: (K,) int64 shortlist rows (no -1).
        cosine: (K,) float64 cosine similarities.
        raw: (K,) float64 raw Qmax scores.
        t_query: query length at the alignment rate.
        t_cands: (K,) int64 candidate lengths at the alignment rate.
    """

    query_row: int
    rows: np.ndarray
    cosine: np.ndarray
    raw: np.ndarray
    t_query: int
    t_cands: np.ndarray


def evaluate_setting(
    shortlists: Sequence[AlignedShortlist],
    cosine_all: np.ndarray,
    labels: Sequence,
    *,
    weight: float,
    norm: str,
    shortlist: int | None = None,
) -> dict:
    """All-items retrieval metrics after re-ranking each query's shortlist.

    Args:
        shortlists: Q aligned shortlists (cosine order, the longest K needed).
        cosine_all: (Q, N) cosine of each query to every item.
        labels: (N,) work ids of the items.
        weight: fusion weight.
        norm: Qmax normalisation.
        shortlist: use only the first K of each shortlist (None = all).

    Returns:
        The metrics dict of :func:`coversearch.evaluate.retrieval.metrics_from_scores`.
    """
    from coversearch.evaluate.retrieval import metrics_from_scores

    labels = np.asarray(labels)
    scores = np.empty(np.shape(cosine_all), np.float64)
    for q, s in enumerate(shortlists):
        k = len(s.rows) if shortlist is None else min(shortlist, len(s.rows))
        qn = normalise_qmax(s.raw[:k], s.t_query, s.t_cands[:k], norm)
        fused = fuse(s.cosine[:k], qn, weight)
        perm = order(s.rows[:k], s.cosine[:k], fused)
        scores[q] = reranked_full_scores(cosine_all[q], s.rows[:k][perm])
    q_rows = np.array([s.query_row for s in shortlists], np.int64)
    if (q_rows < 0).any():
        raise DataError("every validation query must be an item (query_row >= 0) to know its work")
    q_labels = labels[q_rows]
    return metrics_from_scores(scores, q_labels, labels, query_rows=q_rows)


def tune(
    shortlists: Sequence[AlignedShortlist],
    cosine_all: np.ndarray,
    labels: Sequence,
    *,
    weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    norms: Sequence[str] = QMAX_NORMS,
    shortlist_sizes: Sequence[int | None] = (None,),
) -> list[dict]:
    """Grid of (norm, weight, K) on validation queries, best MAP first.

    The alignments are computed once (in ``shortlists``); every setting only
    re-normalises and re-sorts, so the grid costs milliseconds per point.

    Returns:
        list of {"norm", "weight", "shortlist", "map", "mr1", "p_at_10"},
        sorted by MAP desc, then MR1 asc, then smaller weight (closer to the
        embedding) and smaller K (cheaper).
    """
    out = []
    for k in shortlist_sizes:
        for norm in norms:
            for w in weights:
                m = evaluate_setting(shortlists, cosine_all, labels, weight=w, norm=norm, shortlist=k)
                out.append({"norm": norm, "weight": float(w), "shortlist": k,
                            "map": float(m["map"]), "mr1": float(m["mr1"]), "p_at_10": float(m["p_at_10"])})
    out.sort(key=lambda r: (-r["map"], r["mr1"], r["weight"], r["shortlist"] or 0))
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
    return np.lexsort((np.arange(len(c)), -c))[: min(k, len(c) - (query_row >= 0))].astype(np.int64)


def aligned_shortlists(
    cosine_all: np.ndarray,
    query_rows: Sequence[int],
    sequence_of: Callable[[int], np.ndarray],
    *,
    shortlist: int,
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
) -> list[AlignedShortlist]:
    """Cosine shortlists of validation queries, aligned once, for :func:`tune`.

    Costs ``len(query_rows) * shortlist`` alignments (not all pairs).

    Args:
        cosine_all: (Q, N) cosine of each query to every item.
        query_rows: (Q,) item row of each query (excluded from its shortlist).
        sequence_of: ``row -> (T, 12)`` prepared sequence (e.g. the cache).
        shortlist: K, the largest shortlist to be tuned.
        config: alignment parameters.
        jobs: alignment threads.

    Returns:
        Q :class:`AlignedShortlist` in cosine order.
    """
    out = []
    for q, qrow in enumerate(query_rows):
        c = np.asarray(cosine_all[q], np.float64)
        rows = cosine_shortlist(c, int(qrow), shortlist)
        raw, t_q, t_c = align_shortlist(sequence_of(int(qrow)), [sequence_of(int(r)) for r in rows],
                                        config=config, jobs=jobs)
        out.append(AlignedShortlist(int(qrow), rows.astype(np.int64), c[rows], raw, t_q, t_c))
    return out
