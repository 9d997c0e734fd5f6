"""Alignment kernels: the Qmax DP (slow reference, numpy, numba) and the
delay-embedding distance matrix (numpy, numba).

The numba kernel is compiled on first use (about 1 s, then cached on disk
beside this file) and releases the GIL, so threads can run pairs in parallel.

All three compute the same recursion (Serra et al. 2009, eq. 6, as essentia's
``CoverSongSimilarity(alignmentType='serra09')`` implements it) over a binary
cross-recurrence plot ``R`` (M, N) and return only ``max(Q)``, the Qmax score:

    Q[i, j] = max(Q[i-1, j-1], Q[i-2, j-1], Q[i-1, j-2]) + 1        if R[i, j]
    Q[i, j] = max(0, Q[i-1, j-1] - g(R[i-1, j-1]),
                     Q[i-2, j-1] - g(R[i-2, j-1]),
                     Q[i-1, j-2] - g(R[i-1, j-2]))                  otherwise

with g(1) = gamma_o (a disruption opens) and g(0) = gamma_e (it extends), and
rows/columns 0 and 1 left at zero. Row i only reads rows i-1 and i-2, so a
whole row is one vector step: that is what the numpy kernel exploits.
"""

from __future__ import annotations

import threading

import numpy as np


def qmax_reference(rp: np.ndarray, gamma_o: float, gamma_e: float) -> float:
    """Straightforward double loop; the ground truth for tests only.

    Args:
        rp: (M, N) binary cross-recurrence plot (any integer or bool dtype).
        gamma_o: penalty when a disruption opens (previous cell was a match).
        gamma_e: penalty when a disruption extends (previous cell a mismatch).

    Returns:
        max(Q) as a Python float (0.0 if M or N < 3).
    """
    m, n = rp.shape
    q = [[0.0] * n for _ in range(m)]

    def g(v):
        return gamma_o if v else gamma_e

    best = 0.0
    for i in range(2, m):
        for j in range(2, n):
            if rp[i, j]:
                q[i][j] = max(q[i - 1][j - 1], q[i - 2][j - 1], q[i - 1][j - 2]) + 1.0
            else:
                q[i][j] = max(
                    0.0,
                    q[i - 1][j - 1] - g(rp[i - 1, j - 1]),
                    q[i - 2][j - 1] - g(rp[i - 2, j - 1]),
                    q[i - 1][j - 2] - g(rp[i - 1, j - 2]),
                )
            best = max(best, q[i][j])
    return float(best)


def qmax_numpy(rp: np.ndarray, gamma_o: float, gamma_e: float) -> float:
    """Row-vectorised Qmax: M - 2 vector steps of length N - 2.

    Args:
        rp: (M, N) binary cross-recurrence plot.
        gamma_o: disruption-onset penalty.
        gamma_e: disruption-extension penalty.

    Returns:
        max(Q) as a Python float.
    """
    m, n = rp.shape
    if m < 3 or n < 3:
        return 0.0
    r = rp.astype(bool)
    # penalty paid when leaving cell (i, j) through a mismatch, per cell
    pen = np.where(r, gamma_o, gamma_e).astype(np.float64)  # (M, N)
    prev2 = np.zeros(n)  # Q[i-2]
    prev1 = np.zeros(n)  # Q[i-1]
    best = 0.0
    for i in range(2, m):
        c1 = prev1[1:-1]
        c2 = prev2[1:-1]
        c3 = prev1[:-2]
        hit = np.maximum(np.maximum(c1, c2), c3) + 1.0
        miss = np.maximum(
            np.maximum(c1 - pen[i - 1, 1:-1], c2 - pen[i - 2, 1:-1]),
            np.maximum(c3 - pen[i - 1, :-2], 0.0),
        )
        row = np.zeros(n)
        row[2:] = np.where(r[i, 2:], hit, miss)
        best = max(best, float(row.max()))
        prev2, prev1 = prev1, row
    return best


def _build_numba():
    """Compile the numba kernels lazily; None when numba is not installed."""
    try:
        import numba
    except ImportError:  # numba is a dependency, but the numpy path keeps working without it
        return None

    @numba.njit(cache=True, nogil=True)
    def qmax_nb(rp, gamma_o, gamma_e):
        m, n = rp.shape
        if m < 3 or n < 3:
            return 0.0
        q = np.zeros((3, n))  # rolling rows i-2, i-1, i (index i % 3)
        best = 0.0
        for i in range(2, m):
            cur = q[i % 3]
            p1 = q[(i - 1) % 3]
            p2 = q[(i - 2) % 3]
            cur[0] = 0.0
            cur[1] = 0.0
            for j in range(2, n):
                c1 = p1[j - 1]
                c2 = p2[j - 1]
                c3 = p1[j - 2]
                if rp[i, j]:
                    v = max(c1, max(c2, c3)) + 1.0
                else:
                    g1 = gamma_o if rp[i - 1, j - 1] else gamma_e
                    g2 = gamma_o if rp[i - 2, j - 1] else gamma_e
                    g3 = gamma_o if rp[i - 1, j - 2] else gamma_e
                    v = max(max(c1 - g1, c2 - g2), max(c3 - g3, 0.0))
                cur[j] = v
                if v > best:
                    best = v
        return best

    @numba.njit(cache=True, nogil=True)
    def stacked_distances_nb(a, b, m, tau):
        t1, t2 = a.shape[0], b.shape[0]
        bt = np.ascontiguousarray(b.T)  # (12, T2): innermost loops run over contiguous j
        d0 = np.zeros((t1, t2))
        for i in range(t1):
            row = d0[i]
            for c in range(a.shape[1]):
                x = a[i, c]
                bc = bt[c]
                for j in range(t2):
                    diff = x - bc[j]
                    row[j] += diff * diff
        rows, cols = t1 - m * tau, t2 - m * tau
        out = np.zeros((rows, cols))
        for k in range(m):
            off = k * tau
            for i in range(rows):
                src = d0[i + off]
                dst = out[i]
                for j in range(cols):
                    dst[j] += src[j + off]
        return np.sqrt(out)

    return qmax_nb, stacked_distances_nb


def stacked_distances_numpy(a: np.ndarray, b: np.ndarray, m: int, tau: int) -> np.ndarray:
    """Euclidean distances between delay embeddings, from frame distances.

    A stacked vector is frames i, i + tau, ..., i + (m - 1) tau, so its squared
    distance to stacked vector j is a sum of m frame distances along a
    diagonal: one (T1, T2) 12-d distance matrix and m shifted adds replace an
    (M, N) product over 12 * m dimensions (9x fewer operations, and no BLAS,
    whose threads thrash on a shared machine: 5x slower measured).

    Args:
        a: (T1, 12) float64 frames.
        b: (T2, 12) float64 frames.
        m: frames per stacked vector.
        tau: delay between stacked frames.

    Returns:
        (T1 - m * tau, T2 - m * tau) float64 distances.
    """
    d0 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)  # (T1, T2)
    rows, cols = a.shape[0] - m * tau, b.shape[0] - m * tau
    out = np.zeros((rows, cols))
    for k in range(m):
        off = k * tau
        out += d0[off:off + rows, off:off + cols]
    return np.sqrt(out)


_NUMBA = None
_NUMBA_TRIED = False
_NUMBA_LOCK = threading.Lock()  # the first call may come from several worker threads


def numba_kernels():
    """(qmax, stacked_distances) compiled by numba, or None if unavailable.

    ``qmax(rp, gamma_o, gamma_e) -> float`` and
    ``stacked_distances(a, b, m, tau) -> (T1 - m*tau, T2 - m*tau)`` mirror
    :func:`qmax_numpy` and :func:`stacked_distances_numpy`.
    """
    global _NUMBA, _NUMBA_TRIED
    with _NUMBA_LOCK:
        if not _NUMBA_TRIED:
            _NUMBA = _build_numba()
            _NUMBA_TRIED = True
    return _NUMBA
