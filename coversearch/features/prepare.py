"""Bring a chroma sequence to the model's frame rate (the one place that knows it).

Real Da-TACOS frames are 11.6 ms apart (hop 512 at 44.1 kHz), 15-20k per song;
the encoder and the alignment reference work at ``PREPARED_HOP`` (20 x 512
samples, 0.232 s). Resampling is a time-weighted average over each output
frame's span, so any input hop (512, the generator's coarse hops, or a
fractional ratio) lands on the same grid; each frame is then max-normalised
(silent frames stay all-zero, as in HPCP).
"""

from __future__ import annotations

import numpy as np

from coversearch.config import PREPARED_HOP
from coversearch.errors import DataError


def resample(frames: np.ndarray, hop: int, target_hop: int = PREPARED_HOP) -> np.ndarray:
    """Average (T, 12) frames at ``hop`` onto a grid of ``target_hop``.

    Args:
        frames: (T, 12) float32.
        hop: input hop in samples at 44.1 kHz.
        target_hop: output hop in samples at 44.1 kHz.

    Returns:
        (ceil(T * hop / target_hop), 12) float32.
    """
    t_in = frames.shape[0]
    ratio = target_hop / hop
    if abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1:
        r = int(round(ratio))
        t_out = -(-t_in // r)
        pad = t_out * r - t_in
        x = frames
        if pad:
            # the last partial block is averaged over its real frames only
            x = np.concatenate([frames, np.zeros((pad, frames.shape[1]), frames.dtype)])
        sums = x.reshape(t_out, r, -1).sum(axis=1)
        counts = np.full((t_out, 1), r, np.float32)
        counts[-1] = r - pad
        return (sums / counts).astype(np.float32)
    # general ratio: integrate the piecewise-constant input over output spans
    t_out = max(1, int(np.ceil(t_in / ratio)))
    cum = np.concatenate([np.zeros((1, frames.shape[1]), np.float64), np.cumsum(frames, axis=0, dtype=np.float64)])
    edges = np.minimum(np.arange(t_out + 1) * ratio, t_in)

    def integral(pos):
        i = np.floor(pos).astype(int)
        frac = (pos - i)[:, None]
        i2 = np.minimum(i, t_in - 1)
        return cum[i] + frac * frames[i2]

    total = integral(edges[1:]) - integral(edges[:-1])
    width = np.maximum(edges[1:] - edges[:-1], 1e-9)[:, None]
    return (total / width).astype(np.float32)


def normalise(frames: np.ndarray) -> np.ndarray:
    """Max-normalise each frame to [0, 1]; all-zero frames stay zero. (T, 12) float32."""
    x = np.clip(frames, 0.0, None)
    peak = x.max(axis=1, keepdims=True)
    return np.where(peak > 0, x / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def prepare(frames: np.ndarray, hop: int, target_hop: int = PREPARED_HOP) -> np.ndarray:
    """Resample to the model rate and normalise. (T, 12) -> (T', 12) float32.

    Raises:
        DataError: the input is not (T, 12) or is empty.
    """
    if frames.ndim != 2 or frames.shape[1] != 12 or frames.shape[0] == 0:
        raise DataError(f"expected (T, 12) frames with T > 0, got {frames.shape}")
    return normalise(resample(frames, hop, target_hop))
