#!/usr/bin/env python
"""Reproduce the README's accuracy table: the shipped encoder against the two
non-learned baselines on synthetic benchmark data generated with seeds the
encoder never saw, in the training setting ("standard") and in the held-out
generator setting ("wide").

    python scripts/evaluate_synthetic.py                 # full benchmark profile (15,000 performances)
    python scripts/evaluate_synthetic.py --n-works 300   # a quicker subset of the same structure

Data is generated once into --data-dir and reused; results are printed as a
table and written to benchmarks/results/synthetic_eval.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT / "data"), help="where generated data sets live")
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped encoder)")
    ap.add_argument("--seed", type=int, default=2026, help="generator seed of the evaluation data (never used in training)")
    ap.add_argument("--hop", type=int, default=4096, help="generator hop (512 = the real one; slower)")
    ap.add_argument("--n-works", type=int, default=None, help="subset of the benchmark structure (default: all)")
    ap.add_argument("--variations", default="standard,wide")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "synthetic_eval.json"))
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args()

    from coversearch._io import write_json_atomic
    from coversearch.synth import generate
    from coversearch.synth.generate import GENERATOR_VERSION
    from coversearch.evaluate.baselines import evaluate_ftm2d, evaluate_mean_chroma
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.features.cache import build_cache
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    net, info = load_checkpoint(args.model)
    rows = []
    for variation in args.variations.split(","):
        tag = f"benchmark-{variation}-s{args.seed}-h{args.hop}" + (f"-n{args.n_works}" if args.n_works else "")
        data = Path(args.data_dir) / tag
        marker = data / ".coversearch-synth.json"
        stale = marker.is_file() and json.loads(marker.read_text()).get("generator_version") != GENERATOR_VERSION
        if stale:
            print(f"{tag} was made by another generator version: regenerating", file=sys.stderr)
            shutil.rmtree(data)
        if not marker.is_file():
            t = time.perf_counter()
            generate(data, profile="benchmark", seed=args.seed, features=("hpcp",), hop=args.hop,
                     layout="per-feature", jobs=args.jobs, variation=variation, n_works=args.n_works)
            print(f"generated {tag} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        cache, _ = build_cache(data, info["config"].feature, jobs=args.jobs)
        seqs = cache.sequences()
        labels = np.array(cache.work_ids)
        t = time.perf_counter()
        vec = embed_sequences(net, seqs, progress=True)
        t_embed = time.perf_counter() - t
        res = {"encoder": retrieval_metrics(vec, labels)}
        res["encoder"]["embed_seconds"] = t_embed
        if not args.no_baselines:
            res["mean_chroma"] = evaluate_mean_chroma(seqs, labels)
            res["ftm2d"] = evaluate_ftm2d(seqs, labels)
        for method, m in res.items():
            rows.append({"data": tag, "variation": variation, "n_items": len(seqs), "method": method,
                         **{k: (float(v) if isinstance(v, (float, np.floating)) else v)
                            for k, v in m.items() if not isinstance(v, np.ndarray)}})
    print(f"\nmodel {info['model_hash']} ({Path(info['path']).name})")
    print(f"{'data':<44} {'method':<12} {'MAP':>7} {'MR1':>8} {'P@10':>7} {'items':>6}")
    for r in rows:
        print(f"{r['data']:<44} {r['method']:<12} {r['map']:>7.4f} {r['mr1']:>8.2f} {r['p_at_10']:>7.4f} {r['n_items']:>6}")
    write_json_atomic(args.out, {"model_hash": info["model_hash"], "seed": args.seed, "hop": args.hop, "rows": rows})


if __name__ == "__main__":
    main()
