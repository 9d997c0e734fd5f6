"""Label-free adaptation of an encoder to the catalogue it indexes.

The embedding proposes neighbours, the alignment confirms them
(:mod:`~coversearch.adapt.mine`), the encoder is fine-tuned on the confirmed
pairs of the catalogue's own prepared features
(:mod:`~coversearch.adapt.finetune`), and the catalogue is re-embedded; a few
rounds may repeat mine -> train -> re-embed. Work ids are never an input: the
functions here receive vectors and sequences only.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np

from coversearch.adapt.finetune import FinetuneConfig, finetune
from coversearch.adapt.mine import MineConfig, mine_pairs, pair_quality
from coversearch.align import AlignConfig
from coversearch.errors import ConfigError

MIN_PAIRS = 8  # fewer confident pairs than this: nothing to learn from, the model is kept


def adapt_encoder(
    model,
    sequences: list[np.ndarray],
    vectors: np.ndarray,
    *,
    mine: MineConfig = MineConfig(),
    train: FinetuneConfig = FinetuneConfig(),
    rounds: int = 1,
    align_config: AlignConfig = AlignConfig(),
    jobs: int = 1,
    embed_batch: int = 8,
    progress: bool = False,
    log: Callable[[str], None] = lambda s: None,
    on_round: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    known: dict | None = None,
):
    """Mine -> fine-tune -> re-embed, ``rounds`` times, from a copy of ``model``.

    Args:
        model: the index's encoder (left untouched; a copy is trained).
        sequences: N prepared (T, 12) sequences, row i = vector i.
        vectors: (N, D) float32 unit embeddings of ``sequences`` by ``model``.
        mine, train: the mining rule and the training settings.
        rounds: mine -> train -> re-embed repetitions.
        align_config: alignment parameters of the confirmation.
        jobs: alignment threads.
        embed_batch: embedding batch size.
        progress: progress bars.
        log: one line per stage.
        on_round: called as ``on_round(round, pairs, vectors)`` after each
            round (the study scripts measure there; the adaptation never does).
        known: alignments already computed (see :func:`mine_pairs`), shared
            between runs on the same catalogue by the study scripts.

    Returns:
        (adapted model, its vectors (N, D) float32, record dict: ``settings``,
        per-round stats in ``rounds``, ``n_pairs``, ``steps``, and
        ``mined_pairs`` (M, 3) int64 rows (round, a, b) -- an array, not JSON).
    """
    from coversearch.model.embed import embed_sequences

    if rounds < 1:
        raise ConfigError(f"--rounds must be >= 1, got {rounds}")
    if len(sequences) != len(vectors):
        raise ConfigError(f"{len(sequences)} sequences for {len(vectors)} vectors")
    net = copy.deepcopy(model)
    seq_of = sequences.__getitem__
    known = {} if known is None else known
    per_round, mined_all = [], []
    vec = np.asarray(vectors, np.float32)
    for r in range(1, rounds + 1):
        t0 = time.perf_counter()
        mined = mine_pairs(vec, seq_of, mine, align_config=align_config, known=known, jobs=jobs, progress=progress)
        log(f"round {r}/{rounds}: mined {mined.stats['n_pairs']} pairs over {mined.stats['n_items_in_pairs']} "
            f"performances from {mined.stats['n_candidates']} proposals ({mined.stats['n_aligned']} aligned, "
            f"{mined.stats['seconds_align']} s)")
        t1 = time.perf_counter()
        too_few = len(mined.pairs) < MIN_PAIRS
        if too_few:
            log(f"round {r}/{rounds}: {len(mined.pairs)} confident pair(s), fewer than {MIN_PAIRS}: the model is kept "
                f"as it is (the alignment does not single out versions in this catalogue)")
            fit = {"steps": 0}
        else:
            fit = finetune(net, seq_of, len(sequences), mined.pairs, train, seed_offset=1000 * (r - 1),
                           progress=progress)
            kept = (f", kept the state after step {fit['steps']} (held-out pairs' partner MRR "
                    f"{dict(map(tuple, fit['checks'])).get(fit['steps'])})" if fit["checks"] else "")
            log(f"round {r}/{rounds}: {fit['steps_run']} steps, loss {fit['loss_first']} -> {fit['loss_last']}{kept} "
                f"({fit['seconds']} s)")
        t2 = time.perf_counter()
        if fit["steps"]:  # the round's starting state (0 steps) has these vectors already
            vec = embed_sequences(net, sequences, batch_size=embed_batch, threads=train.threads, progress=progress)
        t3 = time.perf_counter()
        per_round.append({"round": r, **mined.stats, **{f"train_{k}": v for k, v in fit.items() if k != "seconds"},
                          "seconds_mine": round(t1 - t0, 2), "seconds_train": round(t2 - t1, 2),
                          "seconds_embed": round(t3 - t2, 2)})
        mined_all.append(np.column_stack([np.full(len(mined.pairs), r, np.int64), mined.pairs]))
        if on_round is not None:
            on_round(r, mined.pairs, vec)
        if too_few:
            break
    record = {"settings": {"mine": mine.to_dict(), "train": train.to_dict(), "rounds": rounds,
                          "align": {k: v for k, v in vars(align_config).items()}},
              "rounds": per_round,
              "n_pairs": [p["n_pairs"] for p in per_round],
              "steps": sum(p["train_steps"] for p in per_round),
              "mined_pairs": np.concatenate(mined_all).astype(np.int64)}
    return net, vec, record


__all__ = ["adapt_encoder", "MineConfig", "FinetuneConfig", "mine_pairs", "pair_quality", "finetune"]
