"""(b) and (c): Siamese networks on fixed-length HPCP, trained on balanced
pairs of versions / non-versions.

Input of both: a performance's prepared chroma (0.232 s frames), min-max
normalised over the whole performance, then zero-padded (or cut) to a fixed
``length`` -- as the earlier write-ups fed whole songs of one size. Training
draws a random window of ``length`` frames from longer songs; embedding takes
the centre one.

* :class:`SiameseCNN` (b): a small 2-D CNN over (12 pitch x time), a dense
  layer, contrastive loss (Hadsell et al. 2006) on the distance of the two
  embeddings; augmentation: Gaussian noise and random pitch shift.
* :class:`ResNet1D` (c): residual 1-D blocks 32-64-128-256 over time with the
  12 pitch classes as channels, global average and max pooling, dense 512,
  128-D L2-normalised; :class:`WeightedDiffHead` scores a pair with learned
  non-negative weights on the squared differences, trained with binary
  cross-entropy. Same augmentation.

Every embedding is L2-normalised, so the index's cosine ranks items exactly
as the contrastive distance does for (b); for (c) the head's weighted
distance equals the Euclidean distance of ``e * sqrt(w)``
(:meth:`PairModel.index_vectors`), which the index renormalises, so the
index ranks by the cosine of those scaled vectors (close to, not identical
with, the head's own order).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["PairConfig", "fixed_length", "SiameseCNN", "ResNet1D", "WeightedDiffHead", "PairModel",
           "balanced_pairs", "train_pairs", "embed_fixed"]


@dataclass(frozen=True)
class PairConfig:
    """A pair-trained baseline's settings (stored with its results).

    Attributes:
        arch: ``cnn`` (b), ``resnet`` (c) or ``resnet_quantum`` (d).
        length: frames per input (600 = 139 s at 0.232 s).
        steps: optimiser steps; batch: pairs per step (half positive).
        lr: Adam learning rate; margin: contrastive margin (b).
        noise: std of the Gaussian noise; pitch_shift: random circular shift.
        qubits, q_layers: the quantum layer of (d).
        seed: everything random derives from it.
    """

    arch: str = "cnn"
    length: int = 600
    steps: int = 400
    batch: int = 32
    lr: float = 1e-3
    margin: float = 1.0
    noise: float = 0.05
    pitch_shift: bool = True
    qubits: int = 7
    q_layers: int = 2
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _minmax(x: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(x, np.float32))
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def fixed_length(seq: np.ndarray, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Min-max normalise (whole performance), then a window of ``length``
    frames: random with ``rng``, else the centre; zero-padded if shorter.
    (T, 12) -> (length, 12) float32."""
    x = _minmax(seq)
    t = x.shape[0]
    out = np.zeros((length, 12), np.float32)
    if t <= length:
        out[:t] = x
        return out
    start = int(rng.integers(0, t - length + 1)) if rng is not None else (t - length) // 2
    return x[start : start + length]


class SiameseCNN(nn.Module):
    """(b) (B, L, 12) -> (B, 64) unit embedding through a 2-D CNN."""

    def __init__(self, dim: int = 64):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, (3, 5), padding=(1, 2)), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d((1, 4)),
            nn.Conv2d(16, 32, (3, 5), padding=(1, 2)), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d((2, 4)),
            nn.Conv2d(32, 64, (3, 3), padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1),
        )
        self.fc = nn.Linear(64, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x.transpose(1, 2)[:, None])  # (B, 64, 1, 1)
        return F.normalize(self.fc(z.flatten(1)), dim=1)  # (B, dim)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.c1 = nn.Conv1d(cin, cout, 3, stride=2, padding=1)
        self.b1 = nn.BatchNorm1d(cout)
        self.c2 = nn.Conv1d(cout, cout, 3, padding=1)
        self.b2 = nn.BatchNorm1d(cout)
        self.skip = nn.Sequential(nn.Conv1d(cin, cout, 1, stride=2), nn.BatchNorm1d(cout))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.skip(x))


class ResNet1D(nn.Module):
    """(c) (B, L, 12) -> (B, 128) unit embedding: residual 1-D blocks 32-64-128-256,
    global average + max pooling (512), dense 512, dense 128."""

    def __init__(self, dim: int = 128, widths=(32, 64, 128, 256)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(12, widths[0], 5, padding=2), nn.BatchNorm1d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for w in widths:
            blocks.append(_Block(cin, w))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Sequential(nn.Linear(2 * cin, 512), nn.ReLU(), nn.Linear(512, dim))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.blocks(self.stem(x.transpose(1, 2)))  # (B, 256, L / 16)
        z = torch.cat([z.mean(dim=-1), z.amax(dim=-1)], dim=1)  # (B, 512)
        return F.normalize(self.fc(z), dim=1)


class WeightedDiffHead(nn.Module):
    """Pair logit ``b - sum_i softplus(w_i) (e1_i - e2_i)^2`` (positive = same work)."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim))
        self.b = nn.Parameter(torch.tensor(1.0))

    def weights(self) -> torch.Tensor:
        return F.softplus(self.w) * 10.0 / self.w.shape[0] * 12.8  # ~1 per unit distance at init

    def forward(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return self.b - ((e1 - e2) ** 2 * self.weights()).sum(dim=1)


class PairModel(nn.Module):
    """A Siamese tower (+ optional quantum layer) with its pair loss."""

    def __init__(self, config: PairConfig):
        super().__init__()
        self.config = config
        if config.arch == "cnn":
            self.tower, self.head = SiameseCNN(), None
        elif config.arch in ("resnet", "resnet_quantum"):
            self.tower = ResNet1D()
            self.head = WeightedDiffHead(self.tower.dim)
        else:
            raise ValueError(f"arch must be cnn, resnet or resnet_quantum, got {config.arch!r}")
        self.quantum = None
        if config.arch == "resnet_quantum":
            from coversearch.earlier.quantum import QuantumLayer

            self.quantum = QuantumLayer(self.tower.dim, n_qubits=config.qubits, n_layers=config.q_layers)

    @property
    def dim(self) -> int:
        return self.tower.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, 12) -> (B, dim) unit embeddings."""
        e = self.tower(x)
        return self.quantum(e) if self.quantum is not None else e

    def pair_loss(self, e1: torch.Tensor, e2: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if self.head is None:  # contrastive (b)
            d = (e1 - e2).norm(dim=1)
            return (same * d ** 2 + (1 - same) * F.relu(self.config.margin - d) ** 2).mean() / 2
        return F.binary_cross_entropy_with_logits(self.head(e1, e2), same)

    @torch.no_grad()
    def index_vectors(self, e: np.ndarray) -> np.ndarray:
        """Embeddings as the index stores them: (b) as they are; (c)/(d) scaled by
        sqrt of the head's weights (the index renormalises the rows)."""
        if self.head is None:
            return e
        return (e * self.head.weights().sqrt().numpy()[None]).astype(np.float32)


def balanced_pairs(groups: list[list[int]], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of rows, half of the same work, half of different works.

    Args:
        groups: rows of each work; positives come from works with >= 2 rows.

    Returns:
        (n, 2) int rows and (n,) float32 labels (1 = same work).
    """
    multi = [g for g in groups if len(g) >= 2]
    n_pos = n // 2
    pairs, same = [], []
    for _ in range(n_pos):
        g = multi[int(rng.integers(len(multi)))]
        a, b = rng.choice(len(g), 2, replace=False)
        pairs.append((g[a], g[b]))
        same.append(1.0)
    while len(pairs) < n:
        ga, gb = rng.choice(len(groups), 2, replace=False)
        pairs.append((groups[ga][int(rng.integers(len(groups[ga])))], groups[gb][int(rng.integers(len(groups[gb])))]))
        same.append(0.0)
    return np.array(pairs, np.int64), np.array(same, np.float32)


def _view(seq, cfg: PairConfig, rng):
    x = fixed_length(seq, cfg.length, rng)
    if cfg.pitch_shift:
        x = np.roll(x, int(rng.integers(0, 12)), axis=1)
    if cfg.noise > 0:
        x = x + rng.normal(0, cfg.noise, x.shape).astype(np.float32)
    return x


def train_pairs(seqs: list[np.ndarray], work_ids, config: PairConfig, *, threads: int = 2,
                log=None) -> tuple[PairModel, dict]:
    """Train a pair model on balanced pairs drawn from ``seqs`` (one batch of
    ``config.batch`` pairs per step); the last step's weights are kept.

    Returns:
        (model in eval mode, record: config, per-step loss, seconds).
    """
    torch.manual_seed(config.seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(config.seed)
    index: dict = {}
    for i, w in enumerate(work_ids):
        index.setdefault(w, []).append(i)
    groups = list(index.values())
    if sum(len(g) >= 2 for g in groups) < 1 or len(groups) < 2:
        raise ValueError("pair training needs at least one work with two versions and two works")
    model = PairModel(config)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses, t0 = [], time.perf_counter()
    model.train()
    for step in range(config.steps):
        pairs, same = balanced_pairs(groups, config.batch, rng)
        x = np.stack([_view(seqs[r], config, rng) for r in pairs.reshape(-1)])  # (2B, L, 12)
        e = model(torch.from_numpy(x)).view(len(pairs), 2, -1)
        loss = model.pair_loss(e[:, 0], e[:, 1], torch.from_numpy(same))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log and (step + 1) % max(1, config.steps // 5) == 0:
            log(f"  {config.arch} seed {config.seed}: step {step + 1}/{config.steps} "
                f"loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)")
    return model.eval(), {"config": config.to_dict(), "loss": losses, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def embed_fixed(model: PairModel, seqs: list[np.ndarray], *, batch: int = 64) -> np.ndarray:
    """Embed with the centre window of each performance. -> (N, dim) float32
    unit rows (before :meth:`PairModel.index_vectors`)."""
    model.eval()
    out = np.zeros((len(seqs), model.dim), np.float32)
    for s in range(0, len(seqs), batch):
        x = np.stack([fixed_length(q, model.config.length) for q in seqs[s : s + batch]])
        out[s : s + len(x)] = model(torch.from_numpy(x)).numpy()
    return out
