"""Train the encoder on a prepared cache, choosing the checkpoint on the MAP of
held-out validation works.

A run can stop and resume: with a run folder, every epoch leaves::

    RUN_DIR/config.json   encoder + training configs, data source, output path
    RUN_DIR/history.json  per-epoch loss and validation metrics, best epoch
    RUN_DIR/best.pt       the best checkpoint so far (+ best.json record)
    RUN_DIR/last.pt       model + optimizer + scheduler + RNG states after the
                          last finished epoch (what ``--resume`` continues from)

Resuming replays nothing: it restores those states and runs the remaining
epochs, so the history equals an uninterrupted run's (a test pins it).

Only works with at least two versions train; a fixed share of those works
(``val_fraction``, drawn with the run's seed) never trains and decides which
epoch's weights are kept. The metric function is injected by the caller
(``api`` passes ``evaluate.retrieval.retrieval_metrics``) so this module does
not import a later stage.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from coversearch._io import write_bytes_atomic, write_json_atomic
from coversearch.errors import ConfigError, DataError
from coversearch.features.cache import PreparedCache
from coversearch.model.augment import augment
from coversearch.model.checkpoint import plain, save_checkpoint
from coversearch.model.config import EncoderConfig, TrainConfig
from coversearch.model.embed import embed_sequences
from coversearch.model.encoder import Encoder
from coversearch.model.losses import contrastive_loss
from coversearch.model.sampler import group_by_work, pk_batches


CONFIG = "config.json"
HISTORY = "history.json"
BEST = "best.pt"
LAST = "last.pt"


def split_works(work_ids: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Rows of training works and rows of validation works (multi-version works only
    in validation; singletons go to training rows but never form a batch)."""
    groups = group_by_work(work_ids)
    multi = sorted(w for w, r in groups.items() if len(r) >= 2)
    rng = np.random.default_rng(seed + 7919)
    n_val = max(2, int(round(len(multi) * val_fraction))) if len(multi) >= 6 else 0
    val_works = set(rng.choice(multi, size=n_val, replace=False).tolist()) if n_val else set()
    train_rows = [i for i, w in enumerate(work_ids) if w not in val_works]
    val_rows = [i for i, w in enumerate(work_ids) if w in val_works]
    return train_rows, val_rows


def train(
    cache: PreparedCache,
    out_path: str | Path,
    *,
    encoder_config: EncoderConfig = EncoderConfig(),
    train_config: TrainConfig = TrainConfig(),
    metric_fn: Callable[[np.ndarray, np.ndarray], dict],
    source: str = "",
    init_from: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    run_dir: str | Path | None = None,
    resume: bool = False,
) -> dict:
    """Train and write the best checkpoint to ``out_path``.

    Args:
        cache: prepared sequences with work labels (training data).
        out_path: ``.pt`` destination (a ``.json`` record is written beside it).
        encoder_config, train_config: the run's configs (stored in the checkpoint).
        metric_fn: ``(vectors (N, D), labels (N,)) -> {"map", "mr1", ...}``.
        source: description of the training data, stored in the record.
        init_from: a checkpoint to fine-tune (its stored encoder config wins
            over ``encoder_config``).
        progress: tqdm bar per epoch.
        log: where per-epoch lines go.
        run_dir: the run folder (config, history, best and last checkpoints);
            None = no run folder (nothing to resume from).
        resume: continue the run in ``run_dir`` from its last finished epoch
            (its stored configs win over the arguments).

    Returns:
        The training record (configs, history, best epoch, model hash).
    """
    run = Path(run_dir) if run_dir else None
    state = None
    if resume:
        if run is None or not (run / LAST).is_file():
            raise ConfigError(f"nothing to resume in {run}: no {LAST} (start the run without --resume)")
        stored = json.loads((run / CONFIG).read_text())
        encoder_config = EncoderConfig.from_dict(stored["encoder_config"])
        train_config = TrainConfig.from_dict(stored["train_config"])
        state = torch.load(run / LAST, map_location="cpu", weights_only=True)
    tc = train_config
    torch.manual_seed(tc.seed)
    torch.set_num_threads(tc.threads)
    rng = np.random.default_rng(tc.seed)
    work_ids = list(cache.work_ids)
    train_rows, val_rows = split_works(work_ids, tc.val_fraction, tc.seed)
    groups = group_by_work([work_ids[i] for i in train_rows])
    groups = {w: [train_rows[j] for j in rows] for w, rows in groups.items()}
    n_multi = sum(len(r) >= 2 for r in groups.values())
    if n_multi < tc.works_per_batch:
        raise DataError(
            f"only {n_multi} training works with >= 2 versions in {cache.path}; need at least "
            f"{tc.works_per_batch} (works per batch)"
        )
    if init_from and not resume:
        from coversearch.model.checkpoint import load_checkpoint

        model, init_info = load_checkpoint(init_from)
        encoder_config = model.config
    else:
        model, init_info = Encoder(encoder_config), None
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = n_multi // tc.works_per_batch
    total = steps_per_epoch * tc.epochs
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
    )
    seqs = cache.sequences()
    val_seqs = [seqs[i] for i in val_rows]
    val_labels = np.array([work_ids[i] for i in val_rows])
    history = []
    best = {"epoch": -1, "val_map": -1.0}
    record_base = {
        "train_config": tc.to_dict(),
        "source": source,
        "n_train_items": len(train_rows),
        "n_train_works": n_multi,
        "n_val_items": len(val_rows),
        "n_val_works": len(set(val_labels.tolist())),
        "init_from": init_info["model_hash"] if init_info else None,
    }
    start = 1
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        history, best = list(state["history"]), dict(state["best"])
        record_base["init_from"] = state.get("init_from")
        start = int(state["epoch"]) + 1
        log(f"resuming {run} after epoch {state['epoch']} of {tc.epochs}")
    elif run is not None:
        run.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run / CONFIG, {"encoder_config": encoder_config.to_dict(), "train_config": tc.to_dict(),
                                         "source": source, "out": str(Path(out_path).resolve()),
                                         "init_from": record_base["init_from"]})
    log(
        f"training on {len(train_rows)} performances of {n_multi} multi-version works; "
        f"validating on {len(val_rows)} performances of {record_base['n_val_works']} held-out works"
    )
    from tqdm import tqdm

    for epoch in range(start, tc.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        losses = []
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{tc.epochs}", unit="batch", disable=not progress, leave=False)
        for batch in pk_batches(groups, tc.works_per_batch, tc.versions_per_work, rng):
            x = np.stack([augment(seqs[r], tc.crop, rng, stretch_range=tc.stretch, noise=tc.noise,
                                  harmonics=tc.harmonics, mix=tc.mix,
                                  other=seqs[int(rng.integers(len(seqs)))] if tc.mix > 0 else None)
                          for r, _ in batch])
            labels = torch.tensor([w for _, w in batch], dtype=torch.long)
            emb = model(torch.from_numpy(x))
            loss = contrastive_loss(tc.loss, emb, labels, temperature=tc.temperature, margin=tc.margin)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        bar.close()
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.perf_counter() - t0, 1)}
        if val_rows:
            m = metric_fn(embed_sequences(model, val_seqs), val_labels)
            row |= {"val_map": round(float(m["map"]), 4), "val_mr1": round(float(m["mr1"]), 2)}
        history.append(row)
        score = row.get("val_map", -float(row["loss"]))
        if score > best["val_map"]:
            best = {"epoch": epoch, "val_map": score, **{k: v for k, v in row.items() if k.startswith("val_")}}
            record = record_base | {"history": history, "best": best}
            record["model_hash"] = save_checkpoint(out_path, model, record)
            if run is not None:
                save_checkpoint(run / BEST, model, record)
        if run is not None:  # after the best checkpoint: last.pt never points past a kept best
            buf = io.BytesIO()
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                        "numpy_rng": rng.bit_generator.state, "history": plain(history), "best": plain(best),
                        "init_from": record_base["init_from"]}, buf)
            write_bytes_atomic(run / LAST, buf.getvalue())
            write_json_atomic(run / HISTORY, {"history": plain(history), "best": plain(best)})
        log(" ".join(f"{k}={v}" for k, v in row.items()))
    # rewrite the record of the kept weights with the full history
    from coversearch.model.checkpoint import load_checkpoint

    kept, _ = load_checkpoint(run / BEST if run is not None else out_path)
    record = record_base | {"history": history, "best": best}
    record["model_hash"] = save_checkpoint(out_path, kept, record)
    if run is not None:
        save_checkpoint(run / BEST, kept, record)
    return record
