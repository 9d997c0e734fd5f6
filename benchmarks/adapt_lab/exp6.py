"""Triangle support as a second opinion on mined pairs (no training; cached alignments).

    python benchmarks/adapt_lab/exp6.py indexes/adapt-dev-wide-s2028     # exp6w.log

A pair (a, b) is supported by c when both (a, c) and (b, c) are candidates whose
reciprocal Qmax z is at least ``t``: versions of one work confirm each other
through their other versions, unrelated pairs rarely share such a neighbour.
Compared at equal pair counts with the shipped rule (qz alone).
"""
import json, sys
from collections import defaultdict
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.adapt_lab.adapt_lab import load
from benchmarks.adapt_lab.exp5 import zscores
from coversearch.adapt.mine import propose, normalise, pair_quality


def main(index_dir):
    net, info, labels, vec, seqs, known = load(index_dir)
    nbrs, cand = propose(vec, 20)
    vals = np.array([known[(a, b)] for a, b in cand.tolist()], np.float64)
    q = normalise(vals[:, 0], vals[:, 1:], "sqrt_prod")
    qa, qb = zscores(nbrs, cand, q)
    qz = np.minimum(qa, qb)
    n = len(vec)
    for t in (1.0, 1.5, 2.0):
        adj = defaultdict(set)
        for (a, b), z in zip(cand.tolist(), qz):
            if z >= t:
                adj[a].add(b); adj[b].add(a)
        support = np.array([len(adj[a] & adj[b]) for a, b in cand.tolist()], np.float64)
        for share in (0.01, 0.02, 0.03):
            m = int(round(share * n * 20))
            row = {"t": t, "share": share, "n_pairs": m}
            for name, s in {"qz": qz, "qz+sup": qz + support, "sup_then_qz": support * 100 + qz,
                            "qz_if_sup": np.where(support > 0, qz, -np.inf)}.items():
                order = np.lexsort((cand[:, 1], cand[:, 0], -s))[:m]
                order = order[np.isfinite(s[order])]
                pq = pair_quality(cand[order], labels)
                row[name] = [len(order), round(pq["precision"], 3), round(pq["recall"], 3)]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
