"""Mining confident version pairs inside a catalogue, without labels.

The embedding proposes, the alignment confirms:

1. **Proposal.** Each item's ``shortlist`` nearest neighbours by cosine
   (computed block by block: memory O(block * N)).
2. **Confirmation.** Every proposed pair is aligned once (Serra09 key-aligned
   cross recurrence + Qmax, :mod:`coversearch.align`), on the prepared
   sequences of the catalogue; a pair proposed from both ends is aligned once.
3. **Selection.** A raw alignment score means different things for different
   kinds of music (a dense, repetitive piece aligns well with everything), so
   with ``rule="robust_z"`` each item judges a candidate relative to its own
   shortlist: ``z_i(j) = (q_ij - median_i) / (1.4826 MAD_i)``. A pair's score
   is the smaller of its two ends' z (``reciprocal``: both items must find the
   other unusually good among their own neighbours). The best ``keep`` share
   of the ``N * shortlist`` proposals is kept. ``rule="global"`` ranks pairs
   by the normalised Qmax itself (one threshold for the whole catalogue; kept
   for the study, it fails on catalogues that mix kinds of music).

Nothing here reads work ids: the inputs are vectors and sequences only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from coversearch.align import AlignConfig
from coversearch.errors import ConfigError

RULES = ("robust_z", "global")


@dataclass(frozen=True)
class MineConfig:
    """How pairs are mined.

    Attributes:
        shortlist: cosine neighbours proposed per item (K).
        rule: ``robust_z`` (per-item robust z-score of the alignment score
            within the item's own shortlist) or ``global`` (one threshold on
            the normalised Qmax for the whole catalogue).
        reciprocal: with ``robust_z``, a pair scores the minimum of both ends'
            z (else the maximum: one end's opinion suffices).
        keep: at most this share of the ``N * shortlist`` proposals is kept.
        fdr: with ``robust_z``, keep only as many of the best pairs as keeps
            the estimated share of false pairs at or below this (0 = off).
            The estimate is label-free (a decoy count): a pair of unrelated
            performances has z-scores symmetric about 0 at both ends, so as
            many of them score ``min(z_a, z_b) >= t`` as score
            ``max(z_a, z_b) <= -t``; FDR(t) ~ #{max <= -t} / #{min >= t}. It
            stops the mining where the catalogue's alignment stops telling
            versions apart (a kind of music the alignment reads poorly).
        max_per_item: at most this many kept pairs touch one item (0 = no
            cap); keeps a few "hub" items from dominating the training pairs.
        norm: Qmax normalisation before scoring (``sqrt_prod`` as the
            re-rank: raw / (T_a T_b) ** 0.25).
    """

    shortlist: int = 20
    rule: str = "robust_z"
    reciprocal: bool = True
    keep: float = 0.03
    fdr: float = 0.1
    max_per_item: int = 0
    norm: str = "sqrt_prod"

    def __post_init__(self):
        if self.shortlist < 2:
            raise ConfigError(f"mining shortlist must be >= 2, got {self.shortlist}")
        if self.rule not in RULES:
            raise ConfigError(f"mining rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not 0.0 < self.keep <= 1.0:
            raise ConfigError(f"--keep must be in (0, 1], got {self.keep}")
        if not 0.0 <= self.fdr < 1.0:
            raise ConfigError(f"--fdr must be in [0, 1), got {self.fdr}")
        if self.max_per_item < 0:
            raise ConfigError(f"max_per_item must be >= 0, got {self.max_per_item}")
        if self.norm not in ("sqrt_prod", "min_len", "none"):
            raise ConfigError(f"mining norm must be sqrt_prod, min_len or none, got {self.norm!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MineConfig":
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"invalid mining config: {e}") from None


def knn(vectors: np.ndarray, k: int, *, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine k nearest neighbours of every row, itself excluded, ties by row.

    Args:
        vectors: (N, D) float32 unit rows.
        k: neighbours per row (clamped to N - 1).
        block: query rows scored at a time (memory O(block * N)).

    Returns:
        rows (N, k) int64 best first; sims (N, k) float32.
    """
    x = np.ascontiguousarray(vectors, np.float32)
    n = x.shape[0]
    k = min(int(k), n - 1)
    rows = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    for a in range(0, n, block):
        s = x[a : a + block] @ x.T  # (B, N)
        b = s.shape[0]
        s[np.arange(b), np.arange(a, a + b)] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(-s, axis=1)[:, :k]
        ps = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)  # score desc, then row asc
        rows[a : a + b] = np.take_along_axis(part, order, axis=1)
        sims[a : a + b] = np.take_along_axis(ps, order, axis=1)
    return rows, sims


def align_pairs(
    pairs: np.ndarray,
    sequence_of: Callable[[int], np.ndarray],
    *,
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw Qmax of unordered pairs, grouped by their first item (one pooled
    query, many candidates, threads over candidates).

    Args:
        pairs: (P, 2) int64 rows, ``pairs[:, 0] < pairs[:, 1]``.
        sequence_of: ``row -> (T, 12)`` prepared sequence.
        config: alignment parameters (``norm`` ignored: raw scores).
        jobs: alignment threads.
        progress: tqdm bar over pairs.

    Returns:
        raw (P,) float64 Qmax; lens (P, 2) int64 lengths of both sides at
        the alignment rate.
    """
    from tqdm import tqdm

    from coversearch.rerank import align_shortlist

    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    raw = np.zeros(len(pairs), np.float64)
    lens = np.zeros((len(pairs), 2), np.int64)
    bar = tqdm(total=len(pairs), desc="aligning pairs", unit="pair", disable=not progress)
    order = np.argsort(pairs[:, 0], kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(pairs[order, 0]) != 0])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends):
        idx = order[s:e]
        q = int(pairs[idx[0], 0])
        r, t_q, t_c = align_shortlist(sequence_of(q), [sequence_of(int(j)) for j in pairs[idx, 1]],
                                      config=config, jobs=jobs)
        raw[idx] = r
        lens[idx, 0] = t_q
        lens[idx, 1] = t_c
        bar.update(len(idx))
    bar.close()
    return raw, lens


def normalise(raw: np.ndarray, lens: np.ndarray, norm: str) -> np.ndarray:
    """Scale raw Qmax of pairs by their lengths at the alignment rate. (P,) -> (P,) float64."""
    raw = np.asarray(raw, np.float64)
    t = np.maximum(np.asarray(lens, np.float64), 1.0)
    if norm == "sqrt_prod":
        return raw / (t[:, 0] * t[:, 1]) ** 0.25
    if norm == "min_len":
        return raw / t.min(axis=1)
    return raw


@dataclass
class Mined:
    """The outcome of one mining pass.

    Attributes:
        pairs: (M, 2) int64 kept pairs (row a < row b), best first.
        scores: (M,) float64 their selection scores.
        candidates: (P, 2) int64 every proposed unordered pair.
        quality: (P,) float64 normalised alignment score of each candidate.
        stats: counts and seconds, for the record.
    """

    pairs: np.ndarray
    scores: np.ndarray
    candidates: np.ndarray
    quality: np.ndarray
    stats: dict


def propose(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cosine shortlist, and the unordered pairs they make.

    Returns:
        nbrs (N, k) int64; candidates (P, 2) int64 unique, a < b, sorted.
    """
    nbrs, _ = knn(vectors, k)
    n, kk = nbrs.shape
    a = np.repeat(np.arange(n, dtype=np.int64), kk)
    b = nbrs.reshape(-1)
    cand = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
    return nbrs, cand


def select(nbrs: np.ndarray, candidates: np.ndarray, quality: np.ndarray, config: MineConfig) -> tuple[np.ndarray, np.ndarray]:
    """Keep the confident pairs among aligned candidates (see the module doc).

    Args:
        nbrs: (N, K) each item's shortlist (rows).
        candidates: (P, 2) unique unordered pairs covering every shortlist entry.
        quality: (P,) normalised alignment score of each candidate.
        config: the rule, reciprocity, share kept and per-item cap.

    Returns:
        pairs (M, 2) int64 best first; scores (M,) float64.
    """
    n, k = nbrs.shape
    cand = np.asarray(candidates, np.int64)
    q = np.asarray(quality, np.float64)
    if config.rule == "global":
        score = q.copy()
    else:
        # per-item statistics over the item's own shortlist
        key = cand[:, 0] * n + cand[:, 1]
        a = np.repeat(np.arange(n, dtype=np.int64), k)
        b = nbrs.reshape(-1)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        pos = np.searchsorted(key, lo * n + hi)
        qs = q[pos].reshape(n, k)  # (N, K) score of each item's shortlist entries
        med = np.median(qs, axis=1)
        mad = 1.4826 * np.median(np.abs(qs - med[:, None]), axis=1)
        scale = np.maximum(mad, 1e-6 + 1e-3 * np.abs(med))
        za = (q - med[cand[:, 0]]) / scale[cand[:, 0]]
        zb = (q - med[cand[:, 1]]) / scale[cand[:, 1]]
        score = np.minimum(za, zb) if config.reciprocal else np.maximum(za, zb)
        decoy = np.maximum(za, zb) if config.reciprocal else np.minimum(za, zb)
    n_keep = max(1, int(round(config.keep * n * k)))
    if config.rule != "global" and config.fdr > 0:
        n_keep = min(n_keep, fdr_cut(score, decoy, config.fdr))
    order = np.lexsort((cand[:, 1], cand[:, 0], -score))
    if n_keep == 0:
        order = order[:0]
    elif config.max_per_item:
        used = np.zeros(n, np.int64)
        kept = []
        for i in order:
            a_, b_ = cand[i]
            if used[a_] < config.max_per_item and used[b_] < config.max_per_item:
                kept.append(i)
                used[a_] += 1
                used[b_] += 1
                if len(kept) == n_keep:
                    break
        order = np.array(kept, np.int64)
    else:
        order = order[:n_keep]
    return cand[order], score[order]


def fdr_cut(score: np.ndarray, decoy: np.ndarray, fdr: float) -> int:
    """How many of the best-scored pairs keep the decoy-estimated false share <= ``fdr``.

    score (P,) selection scores; decoy (P,) their mirror statistic (a pair counts
    as a decoy at threshold t when ``decoy <= -t``). Returns the largest n such
    that, with t the n-th best score (t > 0), #{decoy <= -t} <= fdr * n.
    """
    s = np.sort(np.asarray(score, np.float64))[::-1]
    neg = np.sort(-np.asarray(decoy, np.float64))  # decoy <= -t  <=>  -decoy >= t
    n = np.arange(1, len(s) + 1)
    decoys = len(neg) - np.searchsorted(neg, s, side="left")  # #{-decoy >= t} for t = s[n-1]
    ok = (decoys <= fdr * n) & (s > 0)
    return int(n[ok].max()) if ok.any() else 0


def mine_pairs(
    vectors: np.ndarray,
    sequence_of: Callable[[int], np.ndarray],
    config: MineConfig = MineConfig(),
    *,
    align_config: AlignConfig = AlignConfig(),
    known: dict | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> Mined:
    """Propose by cosine, confirm by alignment, select per item.

    Args:
        vectors: (N, D) float32 unit embeddings of the catalogue.
        sequence_of: ``row -> (T, 12)`` prepared sequence of an item.
        config: the mining rule.
        align_config: alignment parameters.
        known: ``{(a, b): (raw, t_a, t_b)}`` alignments already computed (a
            later round re-proposes many of the same pairs); updated in place.
        jobs: alignment threads.
        progress: progress bars.

    Returns:
        :class:`Mined`.
    """
    t0 = time.perf_counter()
    n = vectors.shape[0]
    if n < 3:
        raise ConfigError(f"adaptation needs a catalogue of at least 3 performances, got {n}")
    k = min(config.shortlist, n - 1)
    nbrs, cand = propose(vectors, k)
    t1 = time.perf_counter()
    known = {} if known is None else known
    todo = np.array([i for i, (a, b) in enumerate(cand.tolist()) if (a, b) not in known], np.int64)
    if len(todo):
        raw, lens = align_pairs(cand[todo], sequence_of, config=align_config, jobs=jobs, progress=progress)
        for i, r, (ta, tb) in zip(todo.tolist(), raw.tolist(), lens.tolist()):
            known[tuple(cand[i].tolist())] = (r, ta, tb)
    vals = np.array([known[(a, b)] for a, b in cand.tolist()], np.float64).reshape(-1, 3)
    quality = normalise(vals[:, 0], vals[:, 1:], config.norm)
    t2 = time.perf_counter()
    pairs, scores = select(nbrs, cand, quality, MineConfig(**{**config.to_dict(), "shortlist": k}))
    stats = {
        "n_items": int(n),
        "n_candidates": int(len(cand)),
        "n_aligned": int(len(todo)),
        "n_pairs": int(len(pairs)),
        "n_items_in_pairs": int(len(np.unique(pairs))),
        "seconds_propose": round(t1 - t0, 2),
        "seconds_align": round(t2 - t1, 2),
    }
    return Mined(pairs=pairs, scores=scores, candidates=cand, quality=quality, stats=stats)


def pair_quality(pairs: np.ndarray, labels: Sequence) -> dict:
    """Precision and recall of mined pairs against work labels -- for reports
    only (the adaptation itself never sees labels).

    Args:
        pairs: (M, 2) rows.
        labels: (N,) work id of every row.

    Returns:
        {"n_pairs", "n_true", "precision", "recall", "n_true_pairs_total"}.
    """
    lab = np.asarray(labels)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    true = int((lab[pairs[:, 0]] == lab[pairs[:, 1]]).sum()) if len(pairs) else 0
    _, counts = np.unique(lab, return_counts=True)
    total = int((counts * (counts - 1) // 2).sum())
    return {"n_pairs": int(len(pairs)), "n_true": true,
            "precision": true / len(pairs) if len(pairs) else 0.0,
            "recall": true / total if total else 0.0, "n_true_pairs_total": total}
