"""Contrastive objectives over work labels, on unit embeddings.

* ``supcon``: supervised contrastive (Khosla et al. 2020): every other version
  of the anchor's work is a positive against all other items of the batch.
* ``triplet``: batch-hard online triplet mining on cosine distance (as MOVE).
* ``ms``: multi-similarity loss (Wang et al. 2019) with its pair mining.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supcon_loss(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """emb (B, D) unit rows; labels (B,) int64."""
    sim = emb @ emb.T / temperature  # (B, B)
    b = emb.shape[0]
    eye = torch.eye(b, dtype=torch.bool, device=emb.device)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    sim = sim.masked_fill(eye, -1e9)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    n_pos = pos.sum(1).clamp(min=1)
    return -((log_prob * pos).sum(1) / n_pos).mean()


def triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss on cosine distance."""
    dist = 1 - emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
    hardest_pos = dist.masked_fill(~same | eye, -1).max(1).values
    hardest_neg = dist.masked_fill(same, 3).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def ms_loss(emb: torch.Tensor, labels: torch.Tensor, alpha=2.0, beta=50.0, base=0.5, eps=0.1) -> torch.Tensor:
    """Multi-similarity loss with its hard-pair mining."""
    sim = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    losses = []
    for i in range(emb.shape[0]):
        sp, sn = sim[i][pos_mask[i]], sim[i][neg_mask[i]]
        if len(sp) == 0 or len(sn) == 0:
            continue
        sp_m = sp[sp - eps < sn.max()]
        sn_m = sn[sn + eps > sp.min()]
        lp = torch.log1p(torch.exp(-alpha * (sp_m - base)).sum()) / alpha if len(sp_m) else sp.sum() * 0
        ln = torch.log1p(torch.exp(beta * (sn_m - base)).sum()) / beta if len(sn_m) else sn.sum() * 0
        losses.append(lp + ln)
    return torch.stack(losses).mean() if losses else emb.sum() * 0


def contrastive_loss(name: str, emb, labels, *, temperature=0.1, margin=0.3):
    """Dispatch by name (``supcon``, ``triplet``, ``ms``)."""
    if name == "supcon":
        return supcon_loss(emb, labels, temperature)
    if name == "triplet":
        return triplet_loss(emb, labels, margin)
    if name == "ms":
        return ms_loss(emb, labels)
    raise ValueError(f"unknown loss {name!r}")
