"""Embed prepared sequences with an encoder, in length-sorted padded batches."""

from __future__ import annotations

import numpy as np
import torch

from coversearch.model.encoder import Encoder


@torch.no_grad()
def embed_sequences(
    model: Encoder,
    seqs: list[np.ndarray],
    *,
    batch_size: int = 8,
    threads: int | None = None,
    progress: bool = False,
    max_frames: int = 4000,
) -> np.ndarray:
    """Embed (T_i, 12) float32 sequences.

    Sequences are sorted by length so a batch pads little; masking makes the
    result independent of batch composition. Sequences longer than
    ``max_frames`` (15 min at the prepared rate) are cut to that length.

    Returns:
        (N, dim) float32, unit rows, in input order.
    """
    if threads:
        torch.set_num_threads(threads)
    model.eval()
    n = len(seqs)
    out = np.zeros((n, model.config.dim), np.float32)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    from tqdm import tqdm

    bar = tqdm(total=n, desc="embedding", unit="perf", disable=not progress)
    for s in range(0, n, batch_size):
        rows = order[s : s + batch_size]
        lens = [min(len(seqs[i]), max_frames) for i in rows]
        t = max(lens)
        x = np.zeros((len(rows), t, 12), np.float32)
        for j, i in enumerate(rows):
            x[j, : lens[j]] = seqs[i][: lens[j]]
        e = model(torch.from_numpy(x), torch.tensor(lens, dtype=torch.long))
        out[rows] = e.numpy()
        bar.update(len(rows))
    bar.close()
    return out
