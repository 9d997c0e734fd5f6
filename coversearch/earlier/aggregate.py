"""(a) Aggregated features per performance: the time mean of every chroma
feature the data has (NaN-aware), concatenated.

The earlier write-up used 52 numbers: means of hpcp (12), crema (12),
chroma_cens (12), mfcc_htk (13, NaN-aware), madmom novelty means and the
first tempo. The synthetic data has only the chroma features (hpcp, and
crema / cens when generated with them); mfcc and madmom do not exist in it,
so :func:`aggregate_features` uses what exists and reports what it used.
numpy only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["aggregate_features", "Standardiser"]


def aggregate_features(seqs_by_feature: Mapping[str, Sequence[np.ndarray]]) -> tuple[np.ndarray, list[str]]:
    """Time means of each feature, concatenated in the mapping's order.

    Args:
        seqs_by_feature: ``{feature: N arrays (T_i, F_feature)}``, the same
            N performances in the same order for every feature.

    Returns:
        (N, sum F) float32 features (a performance whose frames are all NaN
        gets 0), and the column names (``hpcp_0``, ...).
    """
    blocks, names, n = [], [], None
    for feat, seqs in seqs_by_feature.items():
        if n is None:
            n = len(seqs)
        elif len(seqs) != n:
            raise ValueError(f"feature {feat}: {len(seqs)} sequences, expected {n}")
        rows = []
        for i, s in enumerate(seqs):
            x = np.asarray(s, np.float64)
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(f"feature {feat}, sequence {i}: expected (T, F), got shape {x.shape}")
            with np.errstate(all="ignore"):
                m = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0)
            rows.append(np.nan_to_num(m, nan=0.0))
        block = np.stack(rows)
        blocks.append(block)
        names += [f"{feat}_{j}" for j in range(block.shape[1])]
    if not blocks:
        raise ValueError("no feature given")
    return np.concatenate(blocks, axis=1).astype(np.float32), names


class Standardiser:
    """z-scores with statistics of the training rows only."""

    def __init__(self, x: np.ndarray):
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.std = np.where(sd > 0, sd, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)
