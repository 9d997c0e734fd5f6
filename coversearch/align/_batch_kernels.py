"""numba kernels of :mod:`coversearch.align.batch` (module level, so numba's
on-disk cache holds them: closures that call other jitted closures are
recompiled in every process). Importing this module needs numba."""

import numba
import numpy as np
from numba import prange

@numba.njit(cache=True, nogil=True)
def select(x, k):
    # Hoare quickselect in place: afterwards x[k] is the k-th smallest,
    # x[:k] <= x[k] <= x[k+1:] (O(n); a full sort of every row and column
    # is what made this step dominate)
    left, right = 0, x.shape[0] - 1
    while right > left:
        pivot = x[(left + right) // 2]
        i, j = left, right
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                t = x[i]
                x[i] = x[j]
                x[j] = t
                i += 1
                j -= 1
        if k <= j:
            right = j
        elif k >= i:
            left = i
        else:
            break
    return x[k]

@numba.njit(cache=True, nogil=True)
def kth_interp(x, lo, hi, frac):
    # essentia's linear-interpolated percentile from order statistics lo and hi = lo + 1
    v = np.float64(select(x, lo))
    if hi == lo:
        return v
    w = x[hi]
    for t in range(hi + 1, x.shape[0]):  # after select, the (lo+1)-th is the min of x[lo+1:]
        if x[t] < w:
            w = x[t]
    return v + (np.float64(w) - v) * frac

@numba.njit(cache=True, nogil=True)
def pair(a, ga, b, m, tau, kappa, use_oti, gamma_o, gamma_e):
    t1, t2 = a.shape[0], b.shape[0]
    stack = m * tau if m > 1 else 0
    if min(t1, t2) - stack < 3:
        return 0.0
    eff_tau = tau if m > 1 else 0
    # OTI: rotate b by the shift maximising <g_a, roll(g_b, k)> (first max)
    shift = 0
    if use_oti:
        gb = np.zeros(12)
        for i in range(t2):
            for c in range(12):
                gb[c] += np.float64(b[i, c])
        peak = gb.max()
        if peak > 0:
            gb /= peak
        best = -1.0
        for k in range(12):
            s = 0.0
            for c in range(12):
                s += ga[c] * gb[(c - k) % 12]
            if s > best:
                best = s
                shift = k
    # frame distances (T1, T2) in float64, rotated b read in place
    bt = np.empty((12, t2))
    for c in range(12):
        src = (c - shift) % 12
        for j in range(t2):
            bt[c, j] = np.float64(b[j, src])
    d0 = np.zeros((t1, t2))
    for i in range(t1):
        row = d0[i]
        for c in range(12):
            x = np.float64(a[i, c])
            bc = bt[c]
            for j in range(t2):
                diff = x - bc[j]
                row[j] += diff * diff
    rows, cols = t1 - m * eff_tau, t2 - m * eff_tau
    if m == 1:
        rows, cols = t1, t2
    acc = np.zeros((rows, cols))
    for k in range(m):
        off = k * eff_tau
        for i in range(rows):
            src = d0[i + off]
            dst = acc[i]
            for j in range(cols):
                dst[j] += src[j + off]
    d = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            d[i, j] = np.float32(np.sqrt(acc[i, j]))
    # mutual kappa-NN thresholds: linear-interpolated percentiles of rows and columns
    rth = np.empty(rows)
    kk = (cols - 1) * kappa
    lo = int(np.floor(kk))
    hi = min(lo + 1, cols - 1)
    buf = np.empty(cols, np.float32)
    for i in range(rows):
        buf[:] = d[i]
        rth[i] = kth_interp(buf, lo, hi, kk - lo)
    cth = np.empty(cols)
    kk = (rows - 1) * kappa
    lo = int(np.floor(kk))
    hi = min(lo + 1, rows - 1)
    col = np.empty(rows, np.float32)
    for j in range(cols):
        for i in range(rows):
            col[i] = d[i, j]
        cth[j] = kth_interp(col, lo, hi, kk - lo)
    rp = np.zeros((rows, cols), np.uint8)
    for i in range(rows):
        for j in range(cols):
            x = np.float64(d[i, j])
            if x <= rth[i] and x <= cth[j]:
                rp[i, j] = 1
    # Qmax DP (the recursion of coversearch.align._kernels)
    if rows < 3 or cols < 3:
        return 0.0
    q = np.zeros((3, cols))
    best = 0.0
    for i in range(2, rows):
        cur = q[i % 3]
        p1 = q[(i - 1) % 3]
        p2 = q[(i - 2) % 3]
        cur[0] = 0.0
        cur[1] = 0.0
        for j in range(2, cols):
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

@numba.njit(cache=True, parallel=True)
def batch(a, frames, offsets, m, tau, kappa, use_oti, gamma_o, gamma_e):
    n = offsets.shape[0] - 1
    out = np.zeros(n)
    ga = np.zeros(12)
    for i in range(a.shape[0]):
        for c in range(12):
            ga[c] += np.float64(a[i, c])
    peak = ga.max()
    if peak > 0:
        ga /= peak
    for k in prange(n):
        out[k] = pair(a, ga, frames[offsets[k]:offsets[k + 1]], m, tau, kappa, use_oti, gamma_o, gamma_e)
    return out
