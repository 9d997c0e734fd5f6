"""Mining-score variants at equal pair counts: precision and recall against the labels (no training).

    python benchmarks/adapt_lab/exp5.py indexes/adapt-dev-wide-s2028     # exp5w.log

The alignment scores come from the dev index's cache (computed by exp1-4).
Variants: ``qz`` = the shipped rule (reciprocal robust z of the normalised
Qmax within each item's shortlist); ``cz`` = the same on the cosine alone;
``fz`` = on the re-rank's fused score (1 - w) cos + w qmax_norm; ``sumz`` =
qz + cz per end (two opinions that must both be high); ``minz`` = min(qz, cz).
"""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.adapt_lab.adapt_lab import load
from coversearch.adapt.mine import propose, normalise, pair_quality


def zscores(nbrs, cand, val):
    n, k = nbrs.shape
    key = cand[:, 0] * n + cand[:, 1]
    a = np.repeat(np.arange(n), k); b = nbrs.reshape(-1)
    pos = np.searchsorted(key, np.minimum(a, b) * n + np.maximum(a, b))
    qs = val[pos].reshape(n, k)
    med = np.median(qs, 1); mad = 1.4826 * np.median(np.abs(qs - med[:, None]), 1)
    sc = np.maximum(mad, 1e-6 + 1e-3 * np.abs(med))
    return (val - med[cand[:, 0]]) / sc[cand[:, 0]], (val - med[cand[:, 1]]) / sc[cand[:, 1]]


def main(index_dir):
    net, info, labels, vec, seqs, known = load(index_dir)
    nbrs, cand = propose(vec, 20)
    vals = np.array([known[(a, b)] for a, b in cand.tolist()], np.float64)
    q = normalise(vals[:, 0], vals[:, 1:], "sqrt_prod")
    cos = np.sum(vec[cand[:, 0]] * vec[cand[:, 1]], 1).astype(np.float64)
    qa, qb = zscores(nbrs, cand, q)
    ca, cb = zscores(nbrs, cand, cos)
    out = {}
    for w in (0.3, 0.6, 0.8):
        fa, fb = zscores(nbrs, cand, (1 - w) * cos + w * q)
        out[f"fz{w}"] = np.minimum(fa, fb)
    out["qz"] = np.minimum(qa, qb)
    out["cz"] = np.minimum(ca, cb)
    out["sumz"] = np.minimum(qa + ca, qb + cb)
    out["minz"] = np.minimum(np.minimum(qa, ca), np.minimum(qb, cb))
    out["qglobal"] = q
    n = len(vec)
    for share in (0.005, 0.01, 0.02, 0.03):
        m = int(round(share * n * 20))
        row = {"index": str(index_dir), "share": share, "n_pairs": m}
        for name, s in out.items():
            order = np.lexsort((cand[:, 1], cand[:, 0], -s))[:m]
            pq = pair_quality(cand[order], labels)
            row[name] = [round(pq["precision"], 3), round(pq["recall"], 3)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
