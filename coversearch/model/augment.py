"""Training-time augmentation of prepared (T, 12) sequences (numpy).

Random transposition (the encoder is invariant by construction, so this only
guards against numerical asymmetry), time-stretch by linear interpolation,
random crop (covers only an excerpt, like a live edit), frame dropout and
additive noise followed by re-normalisation.
"""

from __future__ import annotations

import numpy as np

from coversearch.features.prepare import normalise


def stretch(seq: np.ndarray, factor: float) -> np.ndarray:
    """Time-stretch (T, 12) by ``factor`` (> 1 = longer) with linear interpolation."""
    t = seq.shape[0]
    n = max(2, int(round(t * factor)))
    pos = np.linspace(0, t - 1, n)
    i = np.floor(pos).astype(int)
    j = np.minimum(i + 1, t - 1)
    f = (pos - i)[:, None]
    return (seq[i] * (1 - f) + seq[j] * f).astype(np.float32)


def crop_or_tile(seq: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of ``length`` frames; a shorter sequence is tiled first."""
    t = seq.shape[0]
    if t < length:
        seq = np.tile(seq, (-(-length // t), 1))
        t = seq.shape[0]
    start = int(rng.integers(0, t - length + 1))
    return seq[start : start + length]


def augment(seq: np.ndarray, length: int, rng: np.random.Generator, *, stretch_range=(0.75, 1.33), noise=0.05) -> np.ndarray:
    """One augmented training view. (T, 12) -> (length, 12) float32."""
    x = np.roll(seq, int(rng.integers(0, 12)), axis=1)
    lo, hi = stretch_range
    x = stretch(x, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    x = crop_or_tile(x, length, rng)
    if noise > 0:
        x = x + rng.normal(0, noise, x.shape).astype(np.float32) * (rng.random() < 0.7)
        drop = rng.random(length) < 0.05
        x[drop] = 0.0
    return normalise(x)
