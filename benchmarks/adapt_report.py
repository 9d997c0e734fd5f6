#!/usr/bin/env python
"""Report of one adaptation on an evaluation catalogue: MAP / MR1 / P@10
before and after (overall and per kind of music for a mixed catalogue), the
mined pairs' precision and recall against the labels (labels read here, for
the report only), the cost (seconds, peak memory) from the adapted index's
manifest, and optionally the same with the alignment re-rank on top.

    coversearch build-index --data DATA --index-dir indexes/X-before
    coversearch adapt --index-dir indexes/X-before --out-index-dir indexes/X-after
    python benchmarks/adapt_report.py --before indexes/X-before --after indexes/X-after \
        [--kinds DATA/kinds.json] [--rerank-queries 300] --out benchmarks/results/adapt/X.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coversearch import api  # noqa: E402
from coversearch.adapt import pair_quality  # noqa: E402
from coversearch.evaluate.retrieval import retrieval_metrics  # noqa: E402
from coversearch.index.bundle import load_bundle  # noqa: E402


def metrics(bundle, kinds: dict | None) -> dict:
    labels = np.array(bundle.items.column("work_id").to_pylist())
    m = retrieval_metrics(np.asarray(bundle.vectors, np.float32), labels, per_query=True)
    out = {k: round(float(m[k]), 4) for k in ("map", "mr1", "p_at_10")} | {"n_queries": int(m["n_queries"])}
    if kinds:
        pq = m["per_query"]
        ids = bundle.items.column("perf_id").to_pylist()
        kind = np.array([kinds.get(p, "?") for p in ids])
        valid = pq["n_rel"] > 0
        for k in sorted(set(kind.tolist())):
            sel = valid & (kind == k)
            out[f"by_kind/{k}"] = {"map": round(float(pq["ap"][sel].mean()), 4), "mr1": round(float(pq["r1"][sel].mean()), 2),
                                   "n_queries": int(sel.sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--kinds", default=None, help="kinds.json {perf_id: kind} of a mixed catalogue")
    ap.add_argument("--rerank-queries", type=int, default=0, help="also evaluate with --rerank on this many seeded queries")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    kinds = json.loads(Path(args.kinds).read_text()) if args.kinds else None
    b, a = load_bundle(args.before, load_index=False), load_bundle(args.after, load_index=False)
    if b.items.column("perf_id").to_pylist() != a.items.column("perf_id").to_pylist():
        raise SystemExit("the two indexes do not hold the same items")
    labels = np.array(a.items.column("work_id").to_pylist())
    ad = a.manifest.extra.get("adaptation") or {}
    mined = np.load(Path(args.after) / "adapt_pairs.npy")
    pairs = {f"round {r}": pair_quality(mined[mined[:, 0] == r, 1:], labels) for r in np.unique(mined[:, 0]).tolist()}
    if kinds:
        ids = np.array(a.items.column("perf_id").to_pylist())
        kind = np.array([kinds.get(p, "?") for p in ids])
        for r in np.unique(mined[:, 0]).tolist():
            p = mined[mined[:, 0] == r, 1:]
            for k in sorted(set(kind.tolist())):
                both = (kind[p[:, 0]] == k) & (kind[p[:, 1]] == k)
                pairs[f"round {r}"][f"pairs_within/{k}"] = int(both.sum())
                pairs[f"round {r}"][f"precision_within/{k}"] = round(float((labels[p[both, 0]] == labels[p[both, 1]]).mean()), 4) if both.any() else 0.0
    out = {"command": "python benchmarks/adapt_report.py " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
           "source": a.manifest.source, "n_items": a.manifest.count,
           "model_before": b.manifest.model_hash, "model_after": a.manifest.model_hash,
           "before": metrics(b, kinds), "after": metrics(a, kinds), "mined_pairs": pairs,
           "cost": {k: ad.get(k) for k in ("seconds", "peak_rss_mb", "steps", "n_pairs")} | {"rounds": ad.get("rounds")},
           "settings": ad.get("settings")}
    out["map_gain_rel"] = round(out["after"]["map"] / out["before"]["map"] - 1, 4)
    if args.rerank_queries:
        for name, idx in (("before_rerank", args.before), ("after_rerank", args.after)):
            m = api.evaluate(idx, rerank=True, max_queries=args.rerank_queries, jobs=args.jobs, progress=False)
            out[name] = {k: round(float(m[k]), 4) for k in ("map", "mr1", "p_at_10")} | {
                "n_queries": int(m["n_queries"]), "seconds": round(float(m["seconds"]), 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("before", "after", "map_gain_rel", "mined_pairs")}, indent=1))


if __name__ == "__main__":
    main()
