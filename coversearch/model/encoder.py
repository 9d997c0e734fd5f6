"""The encoder: a (T, 12) chroma sequence of any length -> an L2-normalised
embedding, invariant to transposition by construction.

Design (after MOVE, Yesiler et al. ICASSP 2020, made cheaper for 2 CPU cores):

* layer 1 is a 2-D convolution whose kernel spans all 12 pitch classes and
  ``kernel`` frames, applied at all 12 circular pitch rotations (circular
  padding over pitch), then max-pooled over pitch. A transposition rotates the
  pitch axis, which permutes the 12 outputs before the max, so the result is
  exactly transposition-invariant; relative pitch within ~3.5 s stays visible.
* layer 1 steps by 2 frames (0.46 s); temporal 1-D convolutions (dilated,
  residual) then see phrases of ~7 s.
* pooling over time is masked attention pooling + mean pooling, so the
  embedding does not depend on alignment, length or structure order, and a
  padded batch gives the same result as one sequence alone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from coversearch.model.config import EncoderConfig


class Encoder(nn.Module):
    """Chroma sequence -> unit embedding."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        c, h, k = config.channels, config.hidden, config.kernel
        # time stride 2: the pitch layer is the costliest; 0.46 s steps suffice after it
        self.pitch_conv = nn.Conv2d(1, c, kernel_size=(12, k), stride=(1, 2), padding=(0, k // 2))
        self.bn0 = nn.BatchNorm1d(c)
        self.proj = nn.Conv1d(c, h, 1)
        self.temporal = nn.ModuleList(
            [nn.Conv1d(h, h, 3, padding=2**i, dilation=2**i) for i in range(config.n_temporal)]
        )
        self.norms = nn.ModuleList([nn.BatchNorm1d(h) for _ in range(config.n_temporal)])
        self.attn = nn.Conv1d(h, 1, 1)
        self.head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, config.dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Embed a padded batch.

        Args:
            x: (B, T, 12) float32 chroma, zero-padded after each length.
            lengths: (B,) int64 valid frames; None = all T.

        Returns:
            (B, dim) float32, unit L2 norm.
        """
        b, t, _ = x.shape  # x: (B, T, 12)
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        z = x.transpose(1, 2)  # (B, 12, T)
        z = torch.cat([z, z[:, :11]], dim=1)[:, None]  # (B, 1, 23, T) circular over pitch
        z = self.pitch_conv(z)  # (B, C, 12, T2), T2 = ceil(T / 2)
        z = z.max(dim=2).values  # (B, C, T2): max over the 12 rotations
        lengths = (lengths + 1) // 2
        t = z.shape[2]
        m = (torch.arange(t, device=x.device)[None, None, :] < lengths[:, None, None]).float()  # (B, 1, T2)
        z = F.relu(self.bn0(z)) * m
        z = self.proj(z) * m  # (B, H, T2)
        for conv, norm in zip(self.temporal, self.norms):
            z = (z + F.relu(norm(conv(z)))) * m
        logits = self.attn(z).masked_fill(m == 0, -1e4)  # (B, 1, T2)
        w = torch.softmax(logits, dim=2)
        att = (z * w).sum(dim=2)  # (B, H)
        mean = z.sum(dim=2) / lengths[:, None].clamp(min=1).float()  # (B, H)
        e = self.head(torch.cat([att, mean], dim=1))  # (B, dim)
        return F.normalize(e, dim=1)
