"""The encoder: a (T, 12) chroma sequence of any length -> an L2-normalised
embedding, invariant to transposition by construction.

Design (after MOVE, Yesiler et al. ICASSP 2020, made cheaper for 2 CPU cores):

* layer 1 is a 2-D convolution whose kernel spans all 12 pitch classes and
  ``kernel`` frames, applied at all 12 circular pitch rotations (circular
  padding over pitch), stepping 2 frames (0.46 s). A transposition rotates the
  pitch axis, which only permutes the 12 rotation rows.
* ``pitch_pool="late"`` (default): every later layer treats the 12 rotation
  rows alike (kernels of pitch width 1), so the rows stay a permutation of
  each other; time pooling is per row, and the max over the 12 rows comes
  last. The embedding is exactly key-invariant and still "sees" the whole
  song in one consistent key (the relative pitch of a chorus and a verse).
  ``"early"`` takes the max over rows right after layer 1 (MOVE's choice),
  which forgets the key relation between windows more than a kernel apart.
* temporal convolutions are dilated and residual (receptive field ~7 s).
* pooling over time is masked attention pooling + mean pooling, so the
  embedding does not depend on alignment, length or section order, and a
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
        self.late = config.pitch_pool == "late"
        if config.pitch_pool not in ("late", "early"):
            raise ValueError(f"pitch_pool must be 'late' or 'early', got {config.pitch_pool!r}")
        # time stride (default 2): the pitch layer is the costliest; 0.46 s steps suffice after it
        if config.stride < 1:
            raise ValueError(f"stride must be >= 1, got {config.stride}")
        self.stride = config.stride
        self.pitch_conv = nn.Conv2d(1, c, kernel_size=(12, k), stride=(1, config.stride), padding=(0, k // 2))
        if self.late:
            self.bn0 = nn.BatchNorm2d(c)
            self.proj = nn.Conv2d(c, h, 1)
            self.temporal = nn.ModuleList(
                [nn.Conv2d(h, h, (1, 3), padding=(0, 2**i), dilation=(1, 2**i)) for i in range(config.n_temporal)]
            )
            self.norms = nn.ModuleList([nn.BatchNorm2d(h) for _ in range(config.n_temporal)])
            self.attn = nn.Conv2d(h, 1, 1)
        else:
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
        z = self.pitch_conv(z)  # (B, C, 12, T2), T2 = ceil(T / stride): one row per rotation
        lengths = (lengths + self.stride - 1) // self.stride
        t = z.shape[-1]
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]  # (B, T2)
        if self.late:
            m = valid[:, None, None, :].float()  # (B, 1, 1, T2)
        else:
            z = z.max(dim=2).values  # (B, C, T2): max over the 12 rotations
            m = valid[:, None, :].float()  # (B, 1, T2)
        z = F.relu(self.bn0(z)) * m
        z = self.proj(z) * m  # (B, H, [12,] T2)
        for conv, norm in zip(self.temporal, self.norms):
            z = (z + F.relu(norm(conv(z)))) * m
        logits = self.attn(z).masked_fill(m == 0, -1e4)  # (B, 1, [12,] T2)
        w = torch.softmax(logits, dim=-1)
        att = (z * w).sum(dim=-1)  # (B, H[, 12])
        n = lengths.clamp(min=1).float().view(b, *([1] * (z.dim() - 2)))
        mean = z.sum(dim=-1) / n  # (B, H[, 12])
        pooled = torch.cat([att, mean], dim=1)  # (B, 2H[, 12])
        if self.late:
            pooled = pooled.max(dim=2).values  # (B, 2H): max over the 12 rotations
        e = self.head(pooled)  # (B, dim)
        return F.normalize(e, dim=1)
