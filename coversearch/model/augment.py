"""Training-time augmentation of prepared (T, 12) sequences (numpy).

Random transposition (the encoder is invariant by construction, so this only
guards against numerical asymmetry), time-stretch by linear interpolation,
random crop (covers only an excerpt, like a live edit), frame dropout and
additive noise followed by re-normalisation; optionally a random timbre
(``harmonics``: energy moved to where a tone's upper partials fall) and an
unrelated performance mixed in at a random gain (``mix``).
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


# semitones above a fundamental where its 3rd, 5th and 7th partials fall, and
# their relative weights in the random timbre
_PARTIALS = ((7, 1.0), (4, 0.6), (10, 0.4))


def augment(seq: np.ndarray, length: int, rng: np.random.Generator, *, stretch_range=(0.75, 1.33), noise=0.05,
            harmonics: float = 0.0, other: np.ndarray | None = None, mix: float = 0.0) -> np.ndarray:
    """One augmented training view. (T, 12) -> (length, 12) float32.

    ``harmonics`` > 0 adds copies of the view rolled up by 7, 4 and 10
    semitones at random weights up to ``harmonics`` (a timbre the training
    data lacks); ``other`` (an unrelated performance) is mixed in at a random
    gain up to ``mix``. Both draw from ``rng`` only when on, so a run without
    them is unchanged.
    """
    x = np.roll(seq, int(rng.integers(0, 12)), axis=1)
    lo, hi = stretch_range
    x = stretch(x, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    x = crop_or_tile(x, length, rng)
    if harmonics > 0:
        w = rng.uniform(0, harmonics, len(_PARTIALS))
        x = x + sum(wi * rel * np.roll(x, shift, axis=1) for wi, (shift, rel) in zip(w, _PARTIALS))
    if mix > 0 and other is not None:
        o = crop_or_tile(np.roll(other, int(rng.integers(0, 12)), axis=1), length, rng)
        x = x + float(rng.uniform(0, mix)) * o
    if noise > 0:
        x = x + rng.normal(0, noise, x.shape).astype(np.float32) * (rng.random() < 0.7)
        drop = rng.random(length) < 0.05
        x[drop] = 0.0
    return normalise(x)
