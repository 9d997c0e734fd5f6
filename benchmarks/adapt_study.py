#!/usr/bin/env python
"""Study of label-free adaptation on a DEV catalogue (never the test sets):
one change at a time from the default recipe, each variant's mined-pair
precision / recall and MAP / MR1 after every round, against the labels
(read here for the report only; the adaptation never sees them).

    python benchmarks/adapt_study.py --index-dir indexes/dev-wide-s2028 --tag dev-wide-s2028 \
        --variant default --variant global:rule=global --variant components:grouping=components

A variant is ``NAME`` or ``NAME:key=value,key=value`` with keys of MineConfig
/ FinetuneConfig or ``rounds``. Alignments are computed once per catalogue and
model and reused by every variant (cached in ``<index-dir>/../.adapt-align-<model>.npz``).
Each variant's record goes to ``benchmarks/results/adapt/<tag>-<name>.json``
with the command that made it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coversearch import api  # noqa: E402
from coversearch.adapt import FinetuneConfig, MineConfig, adapt_encoder, pair_quality  # noqa: E402
from coversearch.evaluate.retrieval import retrieval_metrics  # noqa: E402
from coversearch.index.bundle import load_bundle  # noqa: E402
from benchmarks._common import route_settings  # noqa: E402
from coversearch.model.checkpoint import load_checkpoint  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict, dict, int]:
    name, _, rest = text.partition(":")
    kvs = [kv for kv in rest.split(",") if kv]
    rounds = [int(kv.partition("=")[2]) for kv in kvs if kv.partition("=")[0] == "rounds"]
    mine, train = route_settings([kv for kv in kvs if kv.partition("=")[0] != "rounds"], (MineConfig, FinetuneConfig))
    return name, mine, train, (rounds[-1] if rounds else 1)


def metrics(vec, labels) -> dict:
    m = retrieval_metrics(vec, labels)
    return {k: round(float(m[k]), 4) for k in ("map", "mr1", "p_at_10")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index-dir", required=True, help="an index of the dev catalogue built with the model to adapt")
    ap.add_argument("--tag", required=True, help="record name prefix")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "adapt"))
    args = ap.parse_args()

    bundle = load_bundle(args.index_dir, load_index=False)
    cache = api._cache_of(bundle)
    net, info = load_checkpoint(bundle.own_model())
    bundle.check_model(info["model_hash"], net.config.dim)
    labels = np.array(bundle.items.column("work_id").to_pylist())  # report only
    vectors = np.asarray(bundle.vectors, np.float32)
    seqs = cache.sequences()
    before = metrics(vectors, labels)
    print(f"{args.tag}: {len(seqs)} items, before {before}", flush=True)
    cache_file = Path(args.index_dir).resolve().parent / f".adapt-align-{info['model_hash']}-{Path(args.index_dir).name}.npz"
    known: dict = {}
    if cache_file.is_file():
        z = np.load(cache_file)
        known = {(int(a), int(b)): tuple(v) for (a, b), v in zip(z["pairs"], z["vals"])}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for text in args.variant:
        name, mk, tk, rounds = parse_variant(text)
        mine = MineConfig(**mk)
        train = FinetuneConfig(**{"threads": args.threads, **tk})
        rows = []
        t0 = time.perf_counter()

        def on_round(r, pairs, vec):
            rows.append({"round": r, "pairs": pair_quality(pairs, labels), **metrics(vec, labels)})
            print(f"  {name} round {r}: pairs {rows[-1]['pairs']['n_pairs']} precision "
                  f"{rows[-1]['pairs']['precision']:.3f} recall {rows[-1]['pairs']['recall']:.4f}; "
                  f"MAP {rows[-1]['map']} MR1 {rows[-1]['mr1']}", flush=True)

        _, _, rec = adapt_encoder(net, seqs, vectors, mine=mine, train=train, rounds=rounds, jobs=args.jobs,
                                  progress=False, on_round=on_round, known=known)
        rec.pop("mined_pairs")
        if known and not cache_file.is_file():
            keys = sorted(known)
            np.savez(cache_file, pairs=np.array(keys, np.int64), vals=np.array([known[k] for k in keys], np.float64))
        after = rows[-1]
        out = {"command": "python benchmarks/adapt_study.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
               "variant": name, "index_dir": str(args.index_dir), "source": bundle.manifest.source,
               "model_hash": info["model_hash"], "n_items": len(seqs), "before": before,
               "after": {k: after[k] for k in ("map", "mr1", "p_at_10")},
               "map_gain_rel": round(after["map"] / before["map"] - 1, 4), "per_round": rows,
               "record": rec, "seconds": round(time.perf_counter() - t0, 1)}
        (out_dir / f"{args.tag}-{name}.json").write_text(json.dumps(out, indent=2) + "\n")
        print(f"{args.tag} {name}: MAP {before['map']} -> {after['map']} ({out['map_gain_rel']:+.1%}), "
              f"MR1 {before['mr1']} -> {after['mr1']}; {out['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
