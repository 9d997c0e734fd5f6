"""The encoder lab: one change at a time against a baseline run, each measured on
validation works the runs never train on (issue 11, "a much stronger encoder").

Every run trains on the same training works with the same seed and budget
(only the named settings differ from the shipped encoder's), keeps the epoch
with the best MAP on its own held-out training works (as ``coversearch train``
does), then embeds two validation sets it never saw and scores them through
the engine's metric code:

* ``val-standard``: ``data/val-benchmark-standard-s3031-h4096-n300`` (the
  benchmark structure, standard setting, seed 3031; what the cascade defaults
  were chosen on);
* ``val-wide``: ``data/benchmark-wide-s2028-h4096-n200`` (held-out ``wide``
  setting, seed 2028; the adapt dev set).

Neither is the 3,000-performance test sets of the README (seed 2026): those
score only the model that ships.

    python benchmarks/encoder_lab.py run base --epochs 40
    python benchmarks/encoder_lab.py run crop512 --epochs 40 --set crop=512
    python benchmarks/encoder_lab.py run big --epochs 40 --set channels=64 --set hidden=128
    python benchmarks/encoder_lab.py score shipped          # the shipped encoder, for reference
    python benchmarks/encoder_lab.py table

A run folder (``data/encoder-lab/NAME``) keeps the resumable training state:
rerunning the same command continues an interrupted run. Results:
``benchmarks/results/encoder_lab/NAME.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "encoder_lab"
DATA = Path.cwd()  # data/ paths are relative to where the lab runs (the checkout that holds data/)
VAL_SETS = {
    "val-standard": "data/val-benchmark-standard-s3031-h4096-n300",
    "val-wide": "data/benchmark-wide-s2028-h4096-n200",
}


def _parse_sets(pairs: list[str]) -> tuple[dict, dict]:
    """``key=value`` overrides -> (encoder overrides, train overrides)."""
    from benchmarks._common import route_settings
    from coversearch.model.config import EncoderConfig, TrainConfig

    enc, tr = route_settings(pairs, (EncoderConfig, TrainConfig))
    return enc, tr


def _init_path(init: str | None):
    """``shipped`` -> the shipped encoder's path; a path -> itself (relative to DATA); None -> None."""
    if not init:
        return None
    if init == "shipped":
        from coversearch.model.checkpoint import default_model_path

        return default_model_path()
    return DATA / init


def score(model_path: Path, threads: int) -> dict:
    """Embedding-only MAP / MR1 / recall on the validation sets."""
    import numpy as np

    from coversearch import api
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    net, _ = load_checkpoint(model_path)
    out = {}
    for name, root in VAL_SETS.items():
        cache, _ = api.prepare_data(DATA / root, net.config.feature, jobs=1, progress=False, log=lambda *_: None)
        t0 = time.perf_counter()
        vec = embed_sequences(net, cache.sequences(), threads=threads)
        sec = time.perf_counter() - t0
        m = retrieval_metrics(vec, np.asarray(cache.work_ids))
        out[name] = {"n": len(vec), "map": round(float(m["map"]), 4), "mr1": round(float(m["mr1"]), 2),
                     "p10": round(float(m["p_at_10"]), 4),
                     "recall": {f"{r['fraction']:g}": round(float(r["recall"]), 4) for r in m["recall_at_k"]},
                     "embed_seconds": round(sec, 1)}
    return out


def run(args) -> None:
    from coversearch import api
    from coversearch.model.config import EncoderConfig, TrainConfig

    enc_over, tr_over = _parse_sets(args.set)
    ec = replace(EncoderConfig(), **enc_over)
    tc = replace(TrainConfig(), epochs=args.epochs, threads=args.threads, seed=args.seed, **tr_over)
    run_dir = DATA / "data" / "encoder-lab" / args.name
    model = run_dir / "model.pt"
    t0, c0 = time.perf_counter(), time.process_time()
    resume = (run_dir / "last.pt").is_file()
    if resume and json.loads((run_dir / "history.json").read_text())["history"][-1]["epoch"] >= tc.epochs:
        print(f"{args.name}: training already finished")
    else:
        api.train(None if resume else DATA / args.train, None if resume else model, encoder_config=ec,
                  train_config=tc, jobs=1, run_dir=run_dir, resume=run_dir if resume else None,
                  init_from=_init_path(args.init),
                  progress=False)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    hist = json.loads((run_dir / "history.json").read_text())
    res = {
        "name": args.name,
        "changes": {**enc_over, **tr_over, **({"init": args.init} if args.init else {})},
        "train_data": args.train,
        "encoder_config": json.loads((run_dir / "config.json").read_text())["encoder_config"],
        "train_config": json.loads((run_dir / "config.json").read_text())["train_config"],
        "best": hist["best"],
        "history": hist["history"],
        "train_seconds_this_call": round(train_s, 1),
        "train_cpu_seconds_this_call": round(train_cpu, 1),
        "load_average": os.getloadavg(),
        "validation": score(model, args.threads),
        "command": "python benchmarks/encoder_lab.py run " + " ".join(sys.argv[2:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(res, indent=1) + "\n")
    v = res["validation"]
    print(f"{args.name}: best epoch {hist['best']['epoch']} (own val MAP {hist['best'].get('val_map')}); "
          f"val-standard MAP {v['val-standard']['map']}, val-wide MAP {v['val-wide']['map']}")


def score_only(args) -> None:
    """Score an existing checkpoint (e.g. the shipped encoder) on the validation sets."""
    path = _init_path(args.model)
    from coversearch.model.checkpoint import load_checkpoint

    _, info = load_checkpoint(path)
    rec = info["record"]
    res = {"name": args.name, "changes": {"model": args.model}, "train_data": rec.get("source"),
           "encoder_config": rec.get("encoder_config"), "train_config": rec.get("train_config"),
           "best": rec.get("best"), "history": rec.get("history", []), "load_average": os.getloadavg(),
           "validation": score(path, args.threads),
           "command": "python benchmarks/encoder_lab.py score " + " ".join(sys.argv[2:])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(res, indent=1) + "\n")
    v = res["validation"]
    print(f"{args.name}: val-standard MAP {v['val-standard']['map']}, val-wide MAP {v['val-wide']['map']}")


def table(_args) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    print("| run | changes | epochs | best epoch | s/epoch | val-standard MAP | MR1 | val-wide MAP | MR1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        h = r["history"]
        spe = sum(x["seconds"] for x in h) / max(1, len(h))
        v = r["validation"]
        ch = ", ".join(f"{k}={val}" for k, val in r["changes"].items()) or "(shipped settings)"
        print(f"| {r['name']} | {ch} | {r['train_config']['epochs']} | {r['best']['epoch']} | {spe:.0f} | "
              f"{v['val-standard']['map']:.3f} | {v['val-standard']['mr1']:.1f} | "
              f"{v['val-wide']['map']:.3f} | {v['val-wide']['mr1']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name")
    r.add_argument("--train", default="data/train-s1-n1000")
    r.add_argument("--epochs", type=int, default=40)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--init", default=None, help="fine-tune this checkpoint ('shipped' = the shipped encoder)")
    r.add_argument("--set", action="append", default=[], help="key=value (EncoderConfig/TrainConfig field)")
    r.set_defaults(fn=run)
    c = sub.add_parser("score")
    c.add_argument("name")
    c.add_argument("--model", default="shipped")
    c.add_argument("--threads", type=int, default=1)
    c.set_defaults(fn=score_only)
    t = sub.add_parser("table")
    t.set_defaults(fn=table)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
