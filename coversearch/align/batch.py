"""One query against many candidates in one compiled call: the alignment
kernel of the re-rank cascade.

:func:`qmax_batch` computes, for every candidate, exactly what
:func:`coversearch.align.qmax.qmax_score` computes for the pair (OTI, delay
embedding, mutual kappa-NN cross-recurrence plot, Qmax DP; same float32 /
float64 steps, so the raw scores are equal), but the whole batch is one numba
``prange`` loop: the pairs share the machine's cores without a Python thread
pool, per-pair Python overhead or the GIL. Candidates are passed as one
concatenated (sum T_k, 12) array with offsets, which is also how the index
folder stores them (:mod:`coversearch.index.sequences`).

The cascade runs it twice: a cheap pass at a lower frame rate
(``AlignConfig(downsample=4, m=5)``: 4x fewer frames, so ~16x fewer cells)
over the whole first-stage shortlist, then the full-rate pass over the best
few. Without numba, the numpy path of :mod:`coversearch.align.qmax` runs the
pairs one by one (same numbers, much slower).
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from coversearch.align.qmax import AlignConfig, _check, qmax_score, to_alignment_rate
from coversearch.errors import ConfigError

_KERNEL = None
_TRIED = False
_LOCK = threading.Lock()


def _kernel():
    global _KERNEL, _TRIED
    with _LOCK:
        if not _TRIED:
            try:
                from coversearch.align._batch_kernels import batch as _batch
            except ImportError:  # numba is a dependency, but the numpy path keeps working without it
                _batch = None
            _KERNEL = _batch
            _TRIED = True
    return _KERNEL


def pool_many(seqs: Sequence[np.ndarray], downsample: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool sequences to the alignment rate and concatenate them.

    Args:
        seqs: K arrays (T_k, 12) float32 at the prepared rate.
        downsample: pooling factor (:func:`to_alignment_rate`).

    Returns:
        (frames (sum T'_k, 12) float32, offsets (K + 1,) int64).
    """
    pooled = [to_alignment_rate(s, downsample) for s in seqs]
    offsets = np.zeros(len(pooled) + 1, np.int64)
    if pooled:
        offsets[1:] = np.cumsum([p.shape[0] for p in pooled])
        frames = np.ascontiguousarray(np.concatenate(pooled), np.float32)
    else:
        frames = np.zeros((0, 12), np.float32)
    return frames, offsets


def qmax_batch(
    query: np.ndarray,
    candidates: Sequence[np.ndarray],
    *,
    config: AlignConfig = AlignConfig(),
    jobs: int = 1,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Raw Qmax of one query against K candidates, in one compiled call.

    Args:
        query: (T, 12) float32 at the prepared rate.
        candidates: K arrays (T_k, 12) float32 at the prepared rate.
        config: alignment parameters (``norm`` is ignored: scores are raw).
        jobs: cores for the batch (numba threads, at most the machine's).

    Returns:
        (raw (K,) float64, T_query, T_cands (K,) int64), lengths at the
        alignment rate (what the re-rank normalisations need).

    Raises:
        DataError: the query or a candidate is not a non-empty (T, 12) array.
        ConfigError: ``jobs`` < 1.
    """
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    q = to_alignment_rate(_check(query, "query"), config.downsample)
    checked = [_check(s, f"candidate {i}") for i, s in enumerate(candidates)]
    frames, offsets = pool_many(checked, config.downsample)
    t_c = np.diff(offsets).astype(np.int64)
    kernel = _kernel()
    if kernel is None or not len(checked):
        raw_cfg = AlignConfig(**{**config.__dict__, "norm": "none", "downsample": 1})
        raw = np.array([qmax_score(q, frames[offsets[i]:offsets[i + 1]], raw_cfg) for i in range(len(checked))],
                       np.float64)
        return raw, int(q.shape[0]), t_c
    import numba

    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(jobs), numba.config.NUMBA_NUM_THREADS)))
    try:
        raw = kernel(np.ascontiguousarray(q, np.float32), frames, offsets, int(config.m), int(config.tau),
                     float(config.kappa), bool(config.oti), float(config.gamma_o), float(config.gamma_e))
    finally:
        numba.set_num_threads(prev)
    return np.asarray(raw, np.float64), int(q.shape[0]), t_c
