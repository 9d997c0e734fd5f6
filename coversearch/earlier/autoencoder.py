"""(a) Autoencoders on aggregated features (MSE); the embedding is the code.

``linear``: one linear map to the code and one back. ``deep``: the earlier
write-up's 52-300-200-100-50-20 (ReLU between layers, decoder mirrored),
with the input width set by the features that exist.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn

__all__ = ["AutoEncoder", "train_autoencoder", "encode"]

DEEP = (300, 200, 100, 50)
CODE = 20


class AutoEncoder(nn.Module):
    """Symmetric autoencoder; ``kind`` is ``linear`` or ``deep``."""

    def __init__(self, in_dim: int, kind: str = "deep", code: int = CODE, hidden=DEEP):
        super().__init__()
        if kind not in ("linear", "deep"):
            raise ValueError(f"kind must be 'linear' or 'deep', got {kind!r}")
        widths = [in_dim] + (list(hidden) if kind == "deep" else []) + [code]
        enc, dec = [], []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.ReLU()]
        for a, b in zip(widths[::-1][:-1], widths[::-1][1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*enc[:-1])  # no ReLU on the code
        self.decoder = nn.Sequential(*dec[:-1])  # nor on the reconstruction
        self.kind = kind

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F) -> (code (B, code), reconstruction (B, F))."""
        z = self.encoder(x)
        return z, self.decoder(z)


def train_autoencoder(x: np.ndarray, *, kind: str = "deep", epochs: int = 200, batch: int = 128,
                      lr: float = 1e-3, seed: int = 0, threads: int = 1) -> tuple[AutoEncoder, dict]:
    """Fit on standardised features (N, F); returns the model and its record
    (per-epoch MSE, seconds). One thread by default: the layers are too small
    for a thread pool to pay, and on a shared machine its spinning costs more."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = AutoEncoder(x.shape[1], kind)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    hist, t0 = [], time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(xt)))
        tot = 0.0
        for s in range(0, len(xt), batch):
            b = xt[order[s : s + batch]]
            loss = nn.functional.mse_loss(model(b)[1], b)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(b)
        hist.append(tot / len(xt))
    return model.eval(), {"loss": hist, "seconds": time.perf_counter() - t0, "kind": kind, "epochs": epochs}


@torch.no_grad()
def encode(model: AutoEncoder, x: np.ndarray) -> np.ndarray:
    """(N, F) standardised features -> (N, code) float32 codes."""
    return model.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32)))[0].numpy()
