"""Non-learned baselines (numpy only), evaluated with the same protocol.

Two reference points a learned encoder must beat:

* **Mean chroma, 12 shifts**: a performance is its time-averaged chroma
  (12,); two performances score the best cosine over the 12 circular pitch
  shifts of one of them (key invariance by brute force).
* **2D-FTM** -- Bertin-Mahieux & Ellis, "Large-scale cover song recognition
  using the 2D Fourier transform magnitude", ISMIR 2012: chroma raised to a
  power (1.96, norm of every frame preserved, ``chrompwr`` of the authors'
  code), cut into 75-frame patches, each patch's 2D FFT magnitude (invariant
  to circular pitch shifts and to time offsets inside the patch), the median
  over patches, PCA to 50 dimensions, Euclidean distance.

  Where we differ from the paper, and why:

  - The paper uses *beat-synchronous* chroma (75 beats ~ 35 s). Da-TACOS
    ships no beats we use, so patches are 75 *frames* of our prepared chroma
    (~0.232 s/frame, ~17 s per patch). Tempo invariance is therefore weaker.
  - The median vector is L2-normalised before PCA (as acoss does) so a
    performance's loudness does not move it in the space.
  - PCA is fit on the evaluated set itself by default (the paper fits it on
    a separate training set). It is unsupervised (no labels), but it does see
    the test items; pass ``fit_seqs`` to fit on another set.
  - acoss's re-implementation additionally takes ``log(5 x / ||x|| + 1)`` of
    each patch and uses ``exp(-d^2)``; we keep the paper's version.

Input everywhere: ``seqs``, a list of (T_i, 12) float32 chroma arrays at the
prepared frame rate (hop 10240 samples at 44.1 kHz, ~4.3 frames/s).
Sequences shorter than a patch are tiled in time to the patch length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from coversearch.evaluate.retrieval import blocked_metrics

__all__ = [
    "mean_chroma_embeddings",
    "evaluate_mean_chroma",
    "chrompwr",
    "ftm2d_features",
    "fit_pca",
    "ftm2d_embeddings",
    "evaluate_ftm2d",
]

PATCH = 75
POWER = 1.96
N_COMPONENTS = 50


def _check(seq: np.ndarray, i: int) -> np.ndarray:
    x = np.asarray(seq, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 12:
        raise ValueError(f"sequence {i}: expected (T, 12) chroma, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"sequence {i}: empty (0 frames)")
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


# ---------------------------------------------------------------- mean chroma
def mean_chroma_embeddings(seqs: Sequence[np.ndarray]) -> np.ndarray:
    """Time-averaged chroma of each performance.

    Args:
        seqs: N arrays (T_i, 12) float32.

    Returns:
        (N, 12) float32, L2-normalised rows (all-zero input stays zero).
    """
    means = np.stack([_check(s, i).mean(axis=0) for i, s in enumerate(seqs)])
    return _unit(means).astype(np.float32)


def evaluate_mean_chroma(seqs: Sequence[np.ndarray], labels: Sequence, **kw) -> dict:
    """Retrieval metrics of mean chroma under the best of 12 circular shifts.

    Args:
        seqs: N arrays (T_i, 12).
        labels: (N,) work ids.
        **kw: passed to :func:`coversearch.evaluate.retrieval.blocked_metrics`
            (k, block, exclude_self, progress, per_query).

    Returns:
        The metrics dict (``map``, ``mr1``, ``p_at_10``, ...).
    """
    m = mean_chroma_embeddings(seqs)  # (N, 12)
    shifted = [np.ascontiguousarray(np.roll(m, s, axis=1).T) for s in range(12)]  # 12 x (12, N)

    def score_block(start: int, stop: int) -> np.ndarray:
        q = m[start:stop]
        best = q @ shifted[0]
        for t in shifted[1:]:
            np.maximum(best, q @ t, out=best)
        return best  # (B, N)

    return blocked_metrics(score_block, labels, **kw)


# ---------------------------------------------------------------- 2D-FTM
def chrompwr(x: np.ndarray, power: float = POWER) -> np.ndarray:
    """Raise every frame's chroma to ``power``, keeping the frame's L2 norm.

    Args:
        x: (T, 12) non-negative chroma.
        power: exponent (> 1 sharpens the dominant pitch classes).

    Returns:
        (T, 12) float64.
    """
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    safe = np.where(norm == 0, 1.0, norm)
    p = np.power(np.clip(x, 0, None) / safe, power)
    pn = np.linalg.norm(p, axis=1, keepdims=True)
    return norm * p / np.where(pn == 0, 1.0, pn)


def _ftm_one(x: np.ndarray, win: int, power: float, hop: int) -> np.ndarray:
    if x.shape[0] < win:
        # too short for one patch: repeat it in time (a loop of the song)
        x = np.tile(x, (int(np.ceil(win / x.shape[0])), 1))[:win]
    x = chrompwr(x, power)
    patches = np.lib.stride_tricks.sliding_window_view(x, win, axis=0)[::hop]  # (P, 12, win)
    # The input is real, so |F(k1, k2)| = |F(-k1, -k2)|: transform and take the
    # median of the non-redundant half only (half the time), then mirror it
    # back to the full 12 x win magnitude, exactly as a full fft2 would give.
    half = np.abs(np.fft.rfft2(patches, axes=(1, 2)))  # (P, 12, win // 2 + 1)
    med = np.median(half.reshape(half.shape[0], -1), axis=0).reshape(12, -1)
    k2 = np.arange(med.shape[1], win)
    mirror = med[(-np.arange(12)) % 12][:, win - k2]  # (12, win - win // 2 - 1)
    return np.concatenate([med, mirror], axis=1).reshape(-1)  # (12 * win,)


def ftm2d_features(seqs: Sequence[np.ndarray], *, win: int = PATCH, power: float = POWER,
                   hop: int = 1) -> np.ndarray:
    """Median 2D-FFT-magnitude of 75-frame patches, before PCA.

    Args:
        seqs: N arrays (T_i, 12).
        win: patch length in frames.
        power: chroma power-law exponent.
        hop: frames between successive patches (1 = every frame).

    Returns:
        (N, 12 * win) float32, L2-normalised rows.
    """
    feats = np.stack([_ftm_one(_check(s, i), win, power, hop) for i, s in enumerate(seqs)])
    return _unit(feats).astype(np.float32)


def fit_pca(x: np.ndarray, n_components: int = N_COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of ``x``.

    Args:
        x: (N, F) float features.
        n_components: kept dimensions (clamped to min(N, F)).

    Returns:
        mean (F,) float64 and components (F, d) float64, columns by
        decreasing variance.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    d = max(1, min(n_components, x.shape[0], x.shape[1]))
    # SVD of the centred data; F = 900 keeps this cheap for any N
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:d].T


def ftm2d_embeddings(seqs: Sequence[np.ndarray], *, n_components: int = N_COMPONENTS,
                     fit_seqs: Sequence[np.ndarray] | None = None, win: int = PATCH,
                     power: float = POWER, hop: int = 1) -> np.ndarray:
    """2D-FTM embeddings: median patch magnitudes projected on PCA axes.

    Args:
        seqs: N arrays (T_i, 12) to embed.
        n_components: PCA dimensions (50 in the paper).
        fit_seqs: performances the PCA is fit on; None = ``seqs`` themselves.
        win, power, hop: see :func:`ftm2d_features`.

    Returns:
        (N, d) float32 (not normalised: compared by Euclidean distance).
    """
    feats = ftm2d_features(seqs, win=win, power=power, hop=hop)
    fit = feats if fit_seqs is None else ftm2d_features(fit_seqs, win=win, power=power, hop=hop)
    mean, comps = fit_pca(fit, n_components)
    return ((feats - mean) @ comps).astype(np.float32)


def evaluate_ftm2d(seqs: Sequence[np.ndarray], labels: Sequence, *,
                   n_components: int = N_COMPONENTS, fit_seqs: Sequence[np.ndarray] | None = None,
                   win: int = PATCH, power: float = POWER, hop: int = 1, **kw) -> dict:
    """Retrieval metrics of 2D-FTM with score = -Euclidean distance.

    Args:
        seqs: N arrays (T_i, 12).
        labels: (N,) work ids.
        n_components, fit_seqs, win, power, hop: see :func:`ftm2d_embeddings`.
        **kw: passed to :func:`coversearch.evaluate.retrieval.blocked_metrics`.

    Returns:
        The metrics dict.
    """
    e = ftm2d_embeddings(seqs, n_components=n_components, fit_seqs=fit_seqs,
                         win=win, power=power, hop=hop).astype(np.float64)
    sq = (e * e).sum(axis=1)

    def score_block(start: int, stop: int) -> np.ndarray:
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (e[start:stop] @ e.T)
        return -np.sqrt(np.maximum(d2, 0.0))  # (B, N)

    return blocked_metrics(score_block, labels, **kw)
