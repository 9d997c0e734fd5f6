"""Is a pair baseline's failure a bug or the approach? Can it fit a tiny training set?

``baselines.py`` trains (b), (c), (d) on 4,451 performances and finds (c) and
(d) at chance on their *own training pairs* (AUC ~0.52, BCE loss at ln 2).
This script asks the next question: can the same code fit 16 training works
(~80 performances) when nothing but the data stands in the way?

For each architecture it trains twice on the first ``--works`` works of the
training set, with the settings of ``baselines.py`` except the augmentation:
without pitch shift and noise, then with them (as in the run). It reports the
loss at the start and the end and the AUC of the indexed vectors' cosine on
every in-work pair of those works and as many cross-work pairs (centre
windows). A model that fits the tiny set without augmentation has working
gradients, loss and head; if it then fails with random pitch shifts, the
obstacle is transposition invariance, which the 1-D CNN (pitch classes as
channels) has to learn from data -- and 80% of the training versions are
transposed (``keep_key_prob`` 0.2), so it needs it with or without the
augmentation. No evaluation data is touched.

    nice -n 5 python benchmarks/baselines_fitcheck.py --train data/train-s1-n1000

Writes ``benchmarks/results/baselines_fitcheck.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, table, write_result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, default=DATA / "train-s1-n1000")
    ap.add_argument("--works", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--archs", default="resnet", help="comma-separated: resnet, resnet_quantum, cnn")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch

    from coversearch.api import prepare_data
    from coversearch.earlier.siamese import PairConfig, embed_fixed, train_pairs
    from coversearch.evaluate.pairs import roc_auc, sample_pairs

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cache, _ = prepare_data(a.train, "hpcp", progress=False, log=lambda *_: None)
    seqs, works = cache.sequences(), np.asarray(cache.work_ids)
    rows = np.flatnonzero(np.isin(works, np.unique(works)[: a.works]))
    S, W = [seqs[i] for i in rows], works[rows]
    i, j, same = sample_pairs(W, seed=0)
    out = []
    for arch in a.archs.split(","):
        for aug in (False, True):
            cfg = PairConfig(arch=arch, steps=a.steps, length=a.length, pitch_shift=aug,
                             noise=PairConfig.noise if aug else 0.0, seed=0)
            model, rec = train_pairs(S, W, cfg, threads=a.threads)
            e = model.index_vectors(embed_fixed(model, S))
            e = e / np.linalg.norm(e, axis=1, keepdims=True)
            loss = rec["loss"]
            out.append({"arch": arch, "augmentation": "pitch shift + noise" if aug else "none",
                        "performances": len(S), "works": a.works, "steps": a.steps,
                        "loss_first_30": float(np.mean(loss[:30])), "loss_last_30": float(np.mean(loss[-30:])),
                        "train_pair_auc": roc_auc(same, -np.linalg.norm(e[i] - e[j], axis=1)),
                        "pairs": int(len(i)), "seconds": round(rec["seconds"], 1)})
            print(out[-1], flush=True)
    print(table(out, ["arch", "augmentation", "loss_first_30", "loss_last_30", "train_pair_auc", "seconds"]))
    write_result("baselines_fitcheck", {"train": str(a.train), "rows": out,
                                        "chance": {"auc": 0.5, "bce_loss": 0.6931}},
                 args={k: str(v) for k, v in vars(a).items()}, seconds=time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
