"""Pairwise alignment reference: key-aligned cross recurrence + Qmax.

Serra, J., Serra, X. & Andrzejak, R. G. (2009). Cross recurrence
quantification for cover song identification. New Journal of Physics 11,
093017 -- as the Da-TACOS benchmark suite (acoss, ``Serra09``) runs it through
essentia's ``ChromaCrossSimilarity`` and ``CoverSongSimilarity``:

1. Frame rate. acoss median-aggregates the 512-hop HPCP by 40 frames
   (20480 samples, 0.464 s). Our prepared sequences are already a 20-frame
   average (0.232 s), so :func:`to_alignment_rate` pools them by 2 more
   (``downsample=2``); a median of two values is their mean, so the one
   difference to acoss is mean- instead of median-pooling inside each
   20-frame half. Frames are not renormalised after pooling (acoss neither).
2. Key. The optimal transposition index (OTI, Serra, Gomez & Herrera 2008):
   global chroma = frame sum scaled to max 1; the reference ``b`` is rotated by
   the shift k in 0..11 maximising ``<g_a, roll(g_b, k)>`` (:func:`oti`).
3. Delay embedding: m = 9 frames, delay tau = 1 (4.2 s of context at 0.464 s).
   As essentia does, a T-frame sequence yields T - m * tau stacked vectors
   (one fewer than the textbook T - (m - 1) * tau).
4. Cross-recurrence plot: Euclidean distances between stacked vectors; cell
   (i, j) is 1 iff it is within the kappa = 9.5 % nearest of row i AND of
   column j ("mutual" neighbours), thresholds being linear-interpolated
   percentiles (essentia's ``percentile``; plots checked equal in the
   tests). One deliberate difference: when (n - 1) * kappa is an integer
   essentia's interpolation weights both vanish, its threshold is 0 and the
   whole plot comes out empty; we use the order statistic itself.
5. Qmax local alignment (``_kernels``) with disruption penalties
   gamma_o = gamma_e = 0.5: essentia's defaults, which acoss keeps. The paper
   reports gamma_o = 5, gamma_e = 0.5 as its best setting; both are one config
   field away.
6. Score. acoss takes the raw max(Q) ("symmetric" distance type) and divides
   it by sqrt(len(b)) at the alignment rate -- the reciprocal of the paper's
   distance sqrt(N_b) / Qmax so that higher means more similar
   (``norm='sqrt_ref'``, asymmetric). Other normalisations are offered for
   the re-rank stage, which chooses one on validation works.

Cost: O(T1 * T2) per pair for the distance matrix, its thresholds and the
DP. numba computes the stacked distances from 12-d frame distances (no BLAS:
its threads thrash on a shared machine) and runs the DP; numpy sorts for the
thresholds (SIMD). All release the GIL, so the K alignments of one query run
in a thread pool (:func:`qmax_scores_one_to_many`). Without numba, numpy
fallbacks give the same numbers, several times slower.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from coversearch.align import _kernels
from coversearch.errors import ConfigError, DataError

NORMS = ("none", "sqrt_ref", "sqrt_prod", "min_len")


@dataclass(frozen=True)
class AlignConfig:
    """Parameters of the Serra09 alignment (defaults = acoss's ``Serra09``).

    Attributes:
        downsample: extra pooling of prepared frames (0.232 s) -> 0.464 s.
        m: delay-embedding dimension (essentia ``frameStackSize``).
        tau: embedding delay in frames (``frameStackStride``).
        kappa: fraction of nearest neighbours kept per row and per column
            (``binarizePercentile``).
        oti: rotate ``b`` into the key of ``a`` first.
        gamma_o: disruption-onset penalty (``disOnset``).
        gamma_e: disruption-extension penalty (``disExtension``).
        norm: how the raw Qmax is scaled: "none"; "sqrt_ref" divides by
            sqrt(T_b) (acoss); "sqrt_prod" by sqrt(sqrt(T_a * T_b)), the
            symmetric version; "min_len" by min(T_a, T_b), the fraction of
            the shorter piece that aligns. T = frames at the alignment rate.
    """

    downsample: int = 2
    m: int = 9
    tau: int = 1
    kappa: float = 0.095
    oti: bool = True
    gamma_o: float = 0.5
    gamma_e: float = 0.5
    norm: str = "sqrt_ref"

    def __post_init__(self):
        if self.downsample < 1 or self.m < 1 or self.tau < 1:
            raise ConfigError(f"downsample, m and tau must be >= 1, got {self.downsample}, {self.m}, {self.tau}")
        if not 0.0 < self.kappa < 1.0:
            raise ConfigError(f"kappa must be in (0, 1), got {self.kappa}")
        if self.gamma_o < 0 or self.gamma_e < 0:
            raise ConfigError(f"gamma_o and gamma_e must be >= 0, got {self.gamma_o}, {self.gamma_e}")
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")


def _check(seq: np.ndarray, name: str) -> np.ndarray:
    seq = np.asarray(seq)
    if seq.ndim != 2 or seq.shape[1] != 12 or seq.shape[0] == 0:
        raise DataError(f"{name}: expected a (T, 12) chroma sequence with T > 0, got {seq.shape}")
    return seq.astype(np.float32, copy=False)


def to_alignment_rate(seq: np.ndarray, downsample: int = 2) -> np.ndarray:
    """Mean-pool prepared frames by ``downsample`` (the last block over its real frames).

    Args:
        seq: (T, 12) float32 at the prepared rate (0.232 s).
        downsample: pooling factor; 2 gives acoss's 0.464 s.

    Returns:
        (ceil(T / downsample), 12) float32.
    """
    seq = _check(seq, "sequence")
    if downsample == 1:
        return seq
    t = seq.shape[0]
    t_out = -(-t // downsample)
    pad = t_out * downsample - t
    x = np.concatenate([seq, np.zeros((pad, 12), np.float32)]) if pad else seq
    sums = x.reshape(t_out, downsample, 12).sum(axis=1)
    counts = np.full((t_out, 1), downsample, np.float32)
    counts[-1] = downsample - pad
    return (sums / counts).astype(np.float32)


def global_chroma(seq: np.ndarray) -> np.ndarray:
    """Frame sum scaled to max 1. (T, 12) -> (12,) float64 (all-zero stays zero)."""
    g = np.asarray(seq, np.float64).sum(axis=0)
    peak = g.max()
    return g / peak if peak > 0 else g


def oti(a: np.ndarray, b: np.ndarray) -> int:
    """Optimal transposition index of ``b`` towards ``a``.

    Args:
        a: (T1, 12) chroma of the query.
        b: (T2, 12) chroma of the reference.

    Returns:
        k in 0..11 such that ``np.roll(b, k, axis=1)`` is in the key of ``a``
        (first maximum on ties, as essentia's argmax).
    """
    ga = global_chroma(_check(a, "a"))
    gb = global_chroma(_check(b, "b"))
    scores = [float(ga @ np.roll(gb, k)) for k in range(12)]
    return int(np.argmax(scores))


def delay_embed(seq: np.ndarray, m: int = 9, tau: int = 1) -> np.ndarray:
    """Stack m frames tau apart, as essentia's ``stackChromaFrames``.

    Args:
        seq: (T, 12) chroma.
        m: frames per stacked vector.
        tau: delay between stacked frames.

    Returns:
        (max(T - m * tau, 0), 12 * m) float32 when m > 1; ``seq`` when m == 1.
    """
    if m == 1:
        return np.asarray(seq, np.float32)
    n = max(seq.shape[0] - m * tau, 0)
    if n == 0:
        return np.zeros((0, 12 * m), np.float32)
    return np.concatenate([seq[k * tau:k * tau + n] for k in range(m)], axis=1).astype(np.float32)


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (M, D) x (N, D) -> (M, N) float64."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.sqrt(np.maximum(d2, 0.0))


def _percentile_sorted(sorted_d: np.ndarray, kappa: float) -> np.ndarray:
    """essentia's percentile (linear interpolation) of each sorted row.

    Args:
        sorted_d: (M, N) rows sorted ascending.
        kappa: quantile in (0, 1).

    Returns:
        (M,) float64 thresholds.
    """
    n = sorted_d.shape[1]
    k = (n - 1) * kappa
    lo = int(np.floor(k))
    hi = min(lo + 1, n - 1)
    a = sorted_d[:, lo].astype(np.float64)
    return a + (sorted_d[:, hi] - a) * (k - lo)


def cross_recurrence(x: np.ndarray, y: np.ndarray, kappa: float = 0.095) -> np.ndarray:
    """Binary cross-recurrence plot with the mutual kappa-nearest-neighbour rule.

    Args:
        x: (M, D) delay-embedded query.
        y: (N, D) delay-embedded reference.
        kappa: fraction of neighbours kept per row and per column.

    Returns:
        (M, N) uint8, 1 where both the row's and the column's threshold hold.
    """
    return _binarise(_distances(x, y), kappa)


def _binarise(d: np.ndarray, kappa: float) -> np.ndarray:
    """Mutual kappa-NN rule on an (M, N) distance matrix -> (M, N) uint8."""
    # a full float32 sort (SIMD in numpy >= 2) beats partition/percentile 5x here
    d = d.astype(np.float32)
    rows = _percentile_sorted(np.sort(d, axis=1), kappa)  # (M,)
    cols = _percentile_sorted(np.sort(d, axis=0).T, kappa)  # (N,)
    return ((d <= rows[:, None]) & (d <= cols[None, :])).astype(np.uint8)


def _stacked_distances(a: np.ndarray, b: np.ndarray, m: int, tau: int) -> np.ndarray:
    """Distances between the delay embeddings of two (T, 12) frame sequences."""
    a = np.ascontiguousarray(a, np.float64)
    b = np.ascontiguousarray(b, np.float64)
    if m == 1:
        tau = 0  # essentia keeps every frame when nothing is stacked
    kernels = _kernels.numba_kernels()
    if kernels is not None:
        return kernels[1](a, b, m, tau)
    return _kernels.stacked_distances_numpy(a, b, m, tau)


def qmax(rp: np.ndarray, gamma_o: float = 0.5, gamma_e: float = 0.5) -> float:
    """Raw Qmax of a cross-recurrence plot (numba when available, else numpy).

    Args:
        rp: (M, N) uint8 binary plot.
        gamma_o: disruption-onset penalty.
        gamma_e: disruption-extension penalty.

    Returns:
        max over the alignment matrix, >= 0.
    """
    kernels = _kernels.numba_kernels()
    if kernels is not None:
        return float(kernels[0](np.ascontiguousarray(rp, np.uint8), float(gamma_o), float(gamma_e)))
    return _kernels.qmax_numpy(rp, gamma_o, gamma_e)


def _normaliser(norm: str, t_a: int, t_b: int) -> float:
    if norm == "none":
        return 1.0
    if norm == "sqrt_ref":
        return float(np.sqrt(t_b))
    if norm == "sqrt_prod":
        return float((t_a * t_b) ** 0.25)
    return float(min(t_a, t_b))


def _prepare(seq: np.ndarray, config: AlignConfig, name: str) -> np.ndarray:
    """Validate and pool one side of a pair: (T, 12) -> (T', 12) float32 at the alignment rate."""
    return to_alignment_rate(_check(seq, name), config.downsample)


def _score_prepared(a: np.ndarray, b: np.ndarray, config: AlignConfig) -> float:
    """Score two sequences already at the alignment rate."""
    if min(a.shape[0], b.shape[0]) - (config.m * config.tau if config.m > 1 else 0) < 3:
        return 0.0  # too short to hold a single alignment step
    if config.oti:
        b = np.roll(b, oti(a, b), axis=1)
    rp = _binarise(_stacked_distances(a, b, config.m, config.tau), config.kappa)
    raw = qmax(rp, config.gamma_o, config.gamma_e)
    return raw / _normaliser(config.norm, a.shape[0], b.shape[0])


def qmax_score(a: np.ndarray, b: np.ndarray, config: AlignConfig = AlignConfig()) -> float:
    """Serra09 similarity of ``b`` to the query ``a``; higher = more similar.

    Args:
        a: (T1, 12) float32 query chroma at the prepared rate (0.232 s);
            pass ``AlignConfig(downsample=1)`` for sequences already pooled.
        b: (T2, 12) float32 reference chroma, same rate.
        config: alignment parameters.

    Returns:
        Qmax scaled by ``config.norm`` (acoss: / sqrt(T2 at alignment rate));
        0.0 when either side is shorter than m * tau + 3 alignment frames.

    Raises:
        DataError: an input is not a non-empty (T, 12) array.
    """
    return _score_prepared(_prepare(a, config, "a"), _prepare(b, config, "b"), config)


def qmax_scores_one_to_many(
    query: np.ndarray,
    candidates: Sequence[np.ndarray],
    *,
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
) -> np.ndarray:
    """Score one query against K candidates.

    The numba kernels release the GIL, so ``jobs > 1`` uses threads: no
    process start-up or pickling of sequences, and it is safe in a process
    that already runs torch or FAISS thread pools.

    Args:
        query: (T, 12) float32 at the prepared rate.
        candidates: K arrays (T_k, 12) float32, same rate.
        config: alignment parameters.
        jobs: worker threads (1 = in the calling thread).

    Returns:
        (K,) float64 scores, in the order of ``candidates``.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    q = _prepare(query, config, "query")

    def one(item):
        idx, seq = item
        return _score_prepared(q, _prepare(seq, config, f"candidate {idx}"), config)

    items = list(enumerate(candidates))
    if jobs == 1 or len(items) < 2:
        return np.array([one(it) for it in items], dtype=np.float64)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return np.array(list(pool.map(one, items)), dtype=np.float64)
