"""Fine-tune an encoder on mined pairs of the catalogue's own prepared features.

Each mined pair is its own class ("pair classes"): a batch holds
``pairs_per_batch`` pairs whose items are all distinct, plus
``negatives`` catalogue items drawn at random that are nobody's positive;
the loss is supervised contrastive over the anchors that have a positive.
Chaining pairs into connected components would merge unrelated works through
a single wrong pair; a pair class cannot spread an error beyond itself.

Views are augmented (random crop, time-stretch, noise, frame dropout) but
never transposed: the encoder is exactly key-invariant, so a transposition
teaches it nothing. ``freeze`` keeps the first layers fixed.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from coversearch.errors import ConfigError
from coversearch.features.prepare import normalise
from coversearch.model.augment import crop_or_tile, stretch
from coversearch.model.encoder import Encoder

GROUPINGS = ("pairs", "components")
FRONT = ("pitch_conv", "bn0")  # the pitch-circular first layer and its norm


@dataclass(frozen=True)
class FinetuneConfig:
    """One adaptation's training settings.

    Attributes:
        steps: optimiser steps per round.
        pairs_per_batch: mined pairs per batch (each contributes two views).
        negatives: extra catalogue items per batch, positives of nobody.
        grouping: ``pairs`` (each pair its own class) or ``components``
            (pairs chained into connected components; for the study).
        lr: AdamW peak learning rate (cosine decay, 5% warm-up).
        weight_decay: AdamW weight decay.
        temperature: supervised-contrastive temperature.
        crop: view length in prepared frames (256 = 59 s).
        stretch: time-stretch range of a view.
        noise: additive noise std before re-normalisation.
        freeze: ``none``, or ``front`` to keep the pitch-circular first layer fixed.
        anchor: weight of a penalty that keeps every view's embedding near
            the one the starting model gives it (``1 - cos``, averaged over
            the batch): mined pairs move together while the rest of the
            catalogue keeps its place (0 = off).
        holdout: share of the mined pairs held out to choose when to stop
            (label-free: the held-out pairs' mean reciprocal partner rank
            among ``distractors`` catalogue items, checked every
            ``check_every`` steps and at step 0; the best state is kept, so a
            fine-tuning that never helps the held-out pairs returns the model
            unchanged). 0 trains all steps on all pairs.
        check_every: steps between two checks.
        distractors: catalogue items drawn (once, seeded) as the check's pool.
        seed: everything random derives from it.
        threads: torch intra-op threads.
    """

    steps: int = 300
    pairs_per_batch: int = 16
    negatives: int = 16
    grouping: str = "pairs"
    lr: float = 3e-4
    weight_decay: float = 1e-4
    temperature: float = 0.1
    crop: int = 256
    stretch: tuple[float, float] = (0.8, 1.25)
    noise: float = 0.05
    freeze: str = "none"
    anchor: float = 0.0
    holdout: float = 0.2
    check_every: int = 50
    distractors: int = 500
    seed: int = 0
    threads: int = 2

    def __post_init__(self):
        if self.steps < 1 or self.pairs_per_batch < 2 or self.negatives < 0:
            raise ConfigError(f"steps >= 1, pairs per batch >= 2, negatives >= 0; got {self.steps}, "
                              f"{self.pairs_per_batch}, {self.negatives}")
        if self.grouping not in GROUPINGS:
            raise ConfigError(f"grouping must be one of {', '.join(GROUPINGS)}, got {self.grouping!r}")
        if self.freeze not in ("none", "front"):
            raise ConfigError(f"freeze must be none or front, got {self.freeze!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError(f"holdout share must be in [0, 1), got {self.holdout}")
        if self.check_every < 1 or self.distractors < 0:
            raise ConfigError(f"check_every >= 1 and distractors >= 0; got {self.check_every}, {self.distractors}")
        if not self.anchor >= 0:
            raise ConfigError(f"anchor weight must be >= 0, got {self.anchor}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        d = dict(d)
        if "stretch" in d:
            d["stretch"] = tuple(d["stretch"])
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"invalid fine-tuning config: {e}") from None


def view(seq: np.ndarray, length: int, rng: np.random.Generator, *, stretch_range=(0.8, 1.25), noise=0.05) -> np.ndarray:
    """One augmented view, no transposition. (T, 12) -> (length, 12) float32."""
    lo, hi = stretch_range
    x = stretch(np.asarray(seq, np.float32), float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    x = crop_or_tile(x, length, rng).copy()
    if noise > 0:
        x = x + rng.normal(0, noise, x.shape).astype(np.float32) * (rng.random() < 0.7)
        x[rng.random(length) < 0.05] = 0.0
    return normalise(x)


def components(pairs: np.ndarray, n: int) -> list[list[int]]:
    """Connected components (size >= 2) of the graph the pairs draw on n items."""
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in np.asarray(pairs, np.int64).reshape(-1, 2).tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in np.unique(np.asarray(pairs, np.int64)).tolist():
        groups.setdefault(find(i), []).append(i)
    return [g for _, g in sorted(groups.items()) if len(g) >= 2]


def batches(groups: Sequence[Sequence[int]], n_items: int, config: FinetuneConfig, rng: np.random.Generator):
    """Yield (rows, labels) forever: ``pairs_per_batch`` groups with disjoint
    items, two members drawn from each, plus random catalogue negatives with
    labels of their own (-1 - i, never equal to another label).
    """
    g = len(groups)
    if g < 2:
        raise ConfigError(f"only {g} mined group(s): too few to fine-tune; try a larger --keep or catalogue")
    p = min(config.pairs_per_batch, g)
    while True:
        order = rng.permutation(g)
        pos = 0
        while pos < g:
            rows, labels, used = [], [], set()
            while len(labels) < 2 * p and pos < g:
                grp = groups[order[pos]]
                pos += 1
                two = rng.choice(len(grp), size=2, replace=False)
                a, b = int(grp[two[0]]), int(grp[two[1]])
                if a in used or b in used:
                    continue  # an item in two pairs of one batch would be a positive and a negative at once
                used.update((a, b))
                lab = len(labels) // 2
                rows += [a, b]
                labels += [lab, lab]
            if len(labels) < 4:
                break
            cands = rng.choice(n_items, size=min(n_items, config.negatives + len(used)), replace=False)
            negs = [int(c) for c in cands if int(c) not in used][: config.negatives]
            rows += negs
            labels += [-1 - i for i in range(len(negs))]
            yield rows, labels


def supcon_masked(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss averaged over the anchors that have a positive.

    emb (B, D) unit rows; labels (B,) int64 (items with a unique label are negatives only).
    """
    sim = emb @ emb.T / temperature  # (B, B)
    eye = torch.eye(emb.shape[0], dtype=torch.bool)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    sim = sim.masked_fill(eye, -1e9)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has = pos.any(1)
    per = (log_prob * pos).sum(1) / pos.sum(1).clamp(min=1)
    return -per[has].mean()


MIN_HELD_OUT = 10  # fewer held-out pairs than this: no check, all steps on all pairs


def split_pairs(pairs: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train pairs, held-out pairs), seeded; nothing held out when too few."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    n_held = int(round(share * len(pairs)))
    if n_held < MIN_HELD_OUT or len(pairs) - n_held < 2:
        return pairs, pairs[:0]
    perm = rng.permutation(len(pairs))
    return pairs[np.sort(perm[n_held:])], pairs[np.sort(perm[:n_held])]


def partner_mrr(model: Encoder, sequence_of: Callable[[int], np.ndarray], held: np.ndarray, pool: np.ndarray,
                threads: int) -> float:
    """Mean reciprocal rank of each held-out pair's partner (both ways) among
    the held-out items and the ``pool`` rows, by cosine of full-length embeddings."""
    from coversearch.model.embed import embed_sequences

    rows = np.unique(np.concatenate([np.asarray(held, np.int64).ravel(), np.asarray(pool, np.int64)]))
    at = {int(r): i for i, r in enumerate(rows.tolist())}
    vec = embed_sequences(model, [sequence_of(int(r)) for r in rows], threads=threads)
    sims = vec @ vec.T
    np.fill_diagonal(sims, -np.inf)
    rr = []
    for a, b in np.asarray(held, np.int64).tolist():
        for x, y in ((a, b), (b, a)):
            row = sims[at[x]]
            rr.append(1.0 / (1 + int((row > row[at[y]]).sum())))
    return float(np.mean(rr))


def finetune(
    model: Encoder,
    sequence_of: Callable[[int], np.ndarray],
    n_items: int,
    pairs: np.ndarray,
    config: FinetuneConfig = FinetuneConfig(),
    *,
    seed_offset: int = 0,
    progress: bool = False,
) -> dict:
    """Fine-tune ``model`` in place on mined pairs; returns the loss history.

    Args:
        model: the encoder (its stored config is kept).
        sequence_of: ``row -> (T, 12)`` prepared sequence.
        n_items: catalogue size (negatives are drawn from all rows).
        pairs: (M, 2) mined pairs (rows).
        config: the training settings.
        seed_offset: added to ``config.seed`` (a later round draws new batches).
        progress: tqdm bar over steps.

    Returns:
        {"steps", "steps_run", "loss_first", "loss_last", "seconds", "n_groups",
        "n_held_out", "checks"}: ``steps`` is the number of steps of the state
        returned (the best check; 0 = the model is returned unchanged),
        ``steps_run`` those taken, ``checks`` the (step, held-out partner MRR)
        history.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    torch.manual_seed(config.seed + seed_offset)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed + seed_offset)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    pairs, held = split_pairs(pairs, config.holdout, rng) if config.holdout > 0 else (pairs, pairs[:0])
    groups = components(pairs, n_items) if config.grouping == "components" else pairs.tolist()
    checks: list[list] = []
    best_state, best_step, best_score = None, config.steps, -1.0
    if len(held):
        pool = rng.choice(n_items, size=min(n_items, config.distractors), replace=False)

        def check(step: int) -> None:
            nonlocal best_state, best_step, best_score
            score = round(partner_mrr(model, sequence_of, held, pool, config.threads), 5)
            checks.append([step, score])
            if score > best_score:
                best_state, best_step, best_score = copy.deepcopy(model.state_dict()), step, score
            model.train()

        check(0)
    if config.freeze == "front":
        for name, prm in model.named_parameters():
            if name.split(".")[0] in FRONT:
                prm.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))
    ref = None
    if config.anchor > 0:
        ref = copy.deepcopy(model).eval()
        for prm in ref.parameters():
            prm.requires_grad_(False)
    model.train()
    losses = []
    bar = tqdm(total=config.steps, desc="fine-tuning", unit="step", disable=not progress)
    gen = batches(groups, n_items, config, rng)
    for _ in range(config.steps):
        rows, labels = next(gen)
        x = np.stack([view(sequence_of(r), config.crop, rng, stretch_range=config.stretch, noise=config.noise)
                      for r in rows])  # (B, crop, 12)
        xt = torch.from_numpy(x)
        emb = model(xt)
        loss = supcon_masked(emb, torch.tensor(labels, dtype=torch.long), config.temperature)
        if ref is not None:
            with torch.no_grad():
                old = ref(xt)
            loss = loss + config.anchor * (1.0 - (emb * old).sum(1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if len(held) and (len(losses) % config.check_every == 0 or len(losses) == config.steps):
            check(len(losses))
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    for prm in model.parameters():
        prm.requires_grad_(True)
    model.eval()
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10):]
    return {"steps": best_step, "steps_run": len(losses), "loss_first": round(float(np.mean(head)), 4),
            "loss_last": round(float(np.mean(tail)), 4), "seconds": round(time.perf_counter() - t0, 1),
            "n_groups": len(groups), "n_held_out": int(len(held)), "checks": checks}

