"""Alignment (Serra09 Qmax) vs embedding vs the two-stage hybrid, side by side.

On a subset of synthetic benchmark data small enough for all-pairs alignment
(300-500 performances, whole works), one run measures:

* alignment only: raw Qmax over all pairs (one triangle, as acoss's
  ``all_pairwise(symmetric=True)``), scored as acoss does (Qmax / sqrt(T_ref));
  MAP / MR1 / P@10 and time per pair (one thread);
* embedding only: cosine of the encoder's vectors; time per query = one flat
  FAISS search (query by id: the vector is stored);
* hybrid: cosine shortlist of K, re-ranked by :func:`coversearch.rerank.score_query`
  (full alignment of all K: the cascade with K2 = K);
  the Qmax normalisation and fusion weight are tuned on *validation works*
  (a disjoint third of the subset) and evaluated on the rest; time per query =
  search + measured ``rerank`` call (1 and 2 threads, 10 queries); recall@K
  of the shortlist (the hybrid's ceiling). With ~270 test items, K = 200 is
  most of the catalogue: the hybrid's MAP there approaches alignment-only;
* extrapolation: the catalogue size at which each approach stops being usable
  on this machine (one query within 1 s, all-vs-all evaluation within 1 h,
  both on all cores), and the hybrid's speed-up over alignment at 15,000.

Data: ``--data ROOT`` (any Da-TACOS layout root), else the synthetic generator
(``coversearch.synth.generate``, profile ``benchmark``, ``--variation``
standard or wide = the held-out generator setting) into ``data/``.
Model: ``--model`` or the shipped encoder; without one the embedding stage is
the non-learned 2D-FTM baseline of ``coversearch.evaluate.baselines``
(unit-normalised, cosine; labelled in the output).

Usage::

    nice -n 10 python benchmarks/bench_alignment.py [--items 400] [--variation wide]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, Timer, table, write_result  # noqa: E402

CATALOGUE_FULL = 15_000
QUERY_BUDGET_S = 1.0
EVAL_BUDGET_S = 3600.0


# ----------------------------------------------------------------- data


def load_sequences(args) -> tuple[list[np.ndarray], np.ndarray, str]:
    """Prepared (T, 12) sequences, their work ids, and a data tag."""
    from coversearch.features.cache import build_cache

    if args.data:
        root = Path(args.data)
        tag = root.name
    else:
        from coversearch.synth import generate

        tag = f"align-benchmark-{args.variation}-s{args.seed}-h{args.hop}-n{args.n_works}"
        root = DATA / tag
        if not (root / ".coversearch-synth.json").is_file():
            with Timer() as t:
                generate(root, profile="benchmark", seed=args.seed, features=("hpcp",), hop=args.hop,
                         layout="per-feature", jobs=args.jobs_data, variation=args.variation,
                         n_works=args.n_works)
            print(f"generated {tag} in {t.s:.0f} s", file=sys.stderr)
    cache, _ = build_cache(root, "hpcp", jobs=args.jobs_data, progress=False)
    return [np.array(s) for s in cache.sequences()], np.array(cache.work_ids), tag


def pick_subset(labels: np.ndarray, n_items: int, seed: int) -> np.ndarray:
    """Rows of whole works (multi-version first, shuffled) until ``n_items``."""
    rng = np.random.default_rng(seed)
    works, counts = np.unique(labels, return_counts=True)
    order = rng.permutation(len(works))
    order = order[np.argsort(counts[order] <= 1, kind="stable")]
    rows: list[int] = []
    for w in works[order]:
        if len(rows) >= n_items:
            break
        rows.extend(np.flatnonzero(labels == w).tolist())  # whole works only
    return np.array(sorted(rows), np.int64)


def split_works(labels: np.ndarray, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation rows, test rows) over disjoint works."""
    rng = np.random.default_rng(seed + 1)
    works = np.unique(labels)
    val_works = set(rng.permutation(works)[: int(round(len(works) * val_frac))].tolist())
    is_val = np.array([w in val_works for w in labels])
    return np.flatnonzero(is_val), np.flatnonzero(~is_val)


# ------------------------------------------------------------ embedding


def embed(seqs, model_path) -> tuple[np.ndarray, str, float]:
    """(N, D) unit vectors, a description, seconds per performance."""
    from coversearch.errors import ConfigError

    try:
        from coversearch.model.checkpoint import load_checkpoint
        from coversearch.model.embed import embed_sequences

        net, info = load_checkpoint(model_path)
        with Timer() as t:
            vec = embed_sequences(net, seqs, threads=1)
        return vec, f"encoder {info['model_hash']}", t.s / len(seqs)
    except (ConfigError, ImportError) as e:
        print(f"no encoder ({e}); embedding = 2D-FTM baseline", file=sys.stderr)
        from coversearch.evaluate.baselines import ftm2d_embeddings

        with Timer() as t:
            vec = ftm2d_embeddings(seqs)
        # unit rows so the first stage is a cosine search like the encoder's
        vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        return vec.astype(np.float32), "2D-FTM baseline, cosine (no encoder)", t.s / len(seqs)


def flat_search_seconds(vec: np.ndarray, k: int, n_queries: int = 50) -> float:
    """Mean seconds of one single-query flat inner-product search over ``vec``."""
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(vec.shape[1])
    index.add(np.ascontiguousarray(vec, np.float32))
    q = np.ascontiguousarray(vec[: min(n_queries, len(vec))], np.float32)
    index.search(q[:1], k)
    with Timer() as t:
        for i in range(len(q)):
            index.search(q[i:i + 1], k)
    return t.s / len(q)


# ------------------------------------------------------------ alignment


def all_pairs_raw(seqs, cfg, jobs: int) -> tuple[np.ndarray, float, int]:
    """Symmetric (N, N) raw Qmax from one triangle; (matrix, seconds, pairs)."""
    from coversearch.rerank import align_shortlist  # the re-rank's own aligner (one compiled batch per row)

    n = len(seqs)
    raw = np.zeros((n, n))
    align_shortlist(seqs[0], seqs[:2], config=cfg)  # compile the numba kernel outside the timing
    with Timer() as t:
        for i in range(n - 1):
            s = align_shortlist(seqs[i], seqs[i + 1:], config=cfg, jobs=jobs)[0]
            raw[i, i + 1:] = s
            raw[i + 1:, i] = s
            if i % 50 == 0:
                print(f"  aligned rows {i}/{n} ({t_elapsed(t):.0f} s)", file=sys.stderr)
    return raw, t.s, n * (n - 1) // 2


def t_elapsed(t: Timer) -> float:
    return time.perf_counter() - t.t0


def metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """All-vs-all metrics of a dense (N, N) score matrix, self excluded."""
    from coversearch.evaluate.retrieval import metrics_from_scores

    m = metrics_from_scores(scores, labels, labels, query_rows=np.arange(len(labels)))
    return {k: float(m[k]) for k in ("map", "mr1", "p_at_10")}


def shortlists_for(cos: np.ndarray, raw: np.ndarray, t_align: np.ndarray, k_max: int):
    """AlignedShortlist per query from dense cosine / raw Qmax of one split."""
    from coversearch.rerank import AlignedShortlist

    out = []
    n = cos.shape[0]
    for q in range(n):
        c = cos[q].copy()
        c[q] = -np.inf
        rows = np.argsort(-c, kind="stable")[: min(k_max, n - 1)]
        out.append(AlignedShortlist(q, rows, cos[q, rows].astype(np.float64), raw[q, rows],
                                    int(t_align[q]), t_align[rows]))
    return out


def recall_at(cos: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean share of a query's versions inside its cosine top k (self excluded)."""
    vals = []
    for q in range(len(labels)):
        rel = labels == labels[q]
        rel[q] = False
        if not rel.any():
            continue
        c = cos[q].copy()
        c[q] = -np.inf
        top = np.argsort(-c, kind="stable")[:k]
        vals.append(rel[top].sum() / rel.sum())
    return float(np.mean(vals))


# ----------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="Da-TACOS root (default: generate synthetic data)")
    ap.add_argument("--variation", default="standard", help="generator setting (standard, wide = held out)")
    ap.add_argument("--seed", type=int, default=2027, help="generator seed (never used in training)")
    ap.add_argument("--hop", type=int, default=4096, help="generator hop (the prepared rate is the same)")
    ap.add_argument("--n-works", type=int, default=40, help="works to generate (13 versions each)")
    ap.add_argument("--items", type=int, default=400, help="performances in the subset")
    ap.add_argument("--val-frac", type=float, default=1 / 3, help="share of works used for tuning")
    ap.add_argument("--shortlists", default="50,100,200")
    ap.add_argument("--model", default=None)
    ap.add_argument("--jobs", type=int, default=1, help="alignment threads for the all-pairs run")
    ap.add_argument("--jobs-data", type=int, default=1)
    ap.add_argument("--name", default=None,
                    help="result name (default: bench_alignment_<variation>, plus _n<items> below 300 items)")
    args = ap.parse_args()
    t_start = time.perf_counter()

    import dataclasses

    from coversearch.align import to_alignment_rate
    from coversearch.rerank import RerankConfig, evaluate_setting, score_query, tune

    cfg = dataclasses.replace(RerankConfig().align, norm="none")  # the re-rank's alignment, raw scores
    all_seqs, all_labels, tag = load_sequences(args)
    sub = pick_subset(all_labels, args.items, args.seed)
    seqs = [all_seqs[i] for i in sub]
    labels = all_labels[sub]
    t_align = np.array([to_alignment_rate(s, cfg.downsample).shape[0] for s in seqs], np.int64)
    n = len(seqs)
    print(f"{tag}: {n} performances of {len(np.unique(labels))} works, "
          f"T prepared {np.median([len(s) for s in seqs]):.0f} median", file=sys.stderr)

    # alignment over all pairs of the subset
    raw, align_s, n_pairs = all_pairs_raw(seqs, cfg, args.jobs)
    t_pair = align_s / n_pairs * args.jobs  # single-thread cost per pair
    acoss = raw / np.sqrt(t_align)[None, :]

    vec, emb_desc, embed_s_per_perf = embed(seqs, args.model)
    cos = vec @ vec.T

    val, test = split_works(labels, args.val_frac, args.seed)
    ks = [int(k) for k in args.shortlists.split(",")]
    rows = []
    cores = __import__("os").cpu_count() or 1

    for split_name, idx in (("test", test), ("validation", val)):
        lab = labels[idx]
        c = cos[np.ix_(idx, idx)]
        r = raw[np.ix_(idx, idx)]
        search_s = flat_search_seconds(vec[idx], max(ks))
        rows.append({"split": split_name, "method": "embedding", "K": None, "norm": None, "weight": None,
                     **metrics(c, lab), "recall@K": None, "ms/query": search_s * 1e3})
        rows.append({"split": split_name, "method": "alignment (acoss)", "K": None, "norm": "sqrt_ref",
                     "weight": None, **metrics(acoss[np.ix_(idx, idx)], lab), "recall@K": None,
                     "ms/query": (len(idx) - 1) * t_pair * 1e3})

    # hybrid: tune on validation works, evaluate on test works
    v_lab, t_lab = labels[val], labels[test]
    v_cos, t_cos = cos[np.ix_(val, val)], cos[np.ix_(test, test)]
    v_short = shortlists_for(v_cos, raw[np.ix_(val, val)], t_align[val], max(ks))
    t_short = shortlists_for(t_cos, raw[np.ix_(test, test)], t_align[test], max(ks))
    tuning = tune(v_short, v_cos, v_lab, shortlist_sizes=ks)
    chosen = {}
    for k in ks:
        best = next(r for r in tuning if r["shortlist"] == k)
        chosen[k] = best
        m = evaluate_setting(t_short, t_cos, t_lab, weight=best["weight"], norm=best["norm"], shortlist=k)
        # time one real rerank call per query (sequences in memory, as from the cache)
        q_ids = np.arange(min(10, len(test)))
        per_q = {1: [], 2: []}
        for jobs in per_q:
            for q in q_ids:
                s = t_short[q]
                kk = min(k, len(s.rows))
                cand = [seqs[test[j]] for j in s.rows[:kk]]
                with Timer() as tm:
                    # weight 0.5: the cost of a re-rank that aligns (weight 0 would skip it)
                    score_query(s.rows[:kk], s.cosine[:kk], seqs[test[q]], cand, jobs=jobs,
                                config=RerankConfig(weight=0.5, norm=best["norm"], shortlist=kk, fine=kk))
                per_q[jobs].append(tm.s)
        search_s = flat_search_seconds(vec[test], k)
        rows.append({"split": "test", "method": "hybrid", "K": k, "norm": best["norm"], "weight": best["weight"],
                     "map": float(m["map"]), "mr1": float(m["mr1"]), "p_at_10": float(m["p_at_10"]),
                     "recall@K": recall_at(t_cos, t_lab, k), "ms/query": (search_s + float(np.mean(per_q[1]))) * 1e3,
                     "ms/query 2 threads": (search_s + float(np.mean(per_q[2]))) * 1e3})

    # scale: where each approach stops being usable on this machine
    vec15 = np.random.default_rng(0).standard_normal((CATALOGUE_FULL, vec.shape[1])).astype(np.float32)
    vec15 /= np.linalg.norm(vec15, axis=1, keepdims=True)
    search15 = flat_search_seconds(vec15, max(ks))
    per_vec_search = search15 / CATALOGUE_FULL
    scale = {
        "t_pair_ms": t_pair * 1e3,
        "cores": cores,
        "alignment_query_s_at_15000": CATALOGUE_FULL * t_pair / cores,
        "alignment_all_vs_all_h_at_15000": CATALOGUE_FULL * (CATALOGUE_FULL - 1) / 2 * t_pair / cores / 3600,
        "alignment_max_n_query_1s": int(QUERY_BUDGET_S * cores / t_pair),
        "alignment_max_n_eval_1h": int(math.sqrt(2 * EVAL_BUDGET_S * cores / t_pair)),
        "embedding_flat_query_ms_at_15000": search15 * 1e3,
        "embedding_max_n_flat_query_1s": int(QUERY_BUDGET_S / per_vec_search),
        "embedding_bytes_per_vector": 4 * vec.shape[1],
        "embed_s_per_performance": embed_s_per_perf,
    }
    for k in ks:
        hyb = search15 + k * t_pair / cores
        scale[f"hybrid_K{k}_query_ms_at_15000"] = hyb * 1e3
        scale[f"hybrid_K{k}_speedup_vs_alignment_at_15000"] = CATALOGUE_FULL * t_pair / cores / hyb

    cols = ["split", "method", "K", "norm", "weight", "map", "mr1", "p_at_10", "recall@K", "ms/query",
            "ms/query 2 threads"]
    print()
    print(table(rows, cols, title=f"{tag}: {n} performances; embedding = {emb_desc}; "
                                 f"{n_pairs:,} pairs at {t_pair * 1e3:.2f} ms/pair (1 thread)"))
    print()
    print(table([{"quantity": k, "value": v} for k, v in scale.items()], title="scale (extrapolated from measured costs)"))
    print()
    print(table(tuning[:8], title="tuning on validation works (best first)"))
    # a quick (small) run must not overwrite the full run's figures
    default_name = f"bench_alignment_{args.variation}" + ("" if args.items >= 300 else f"_n{args.items}")
    write_result(args.name or default_name, {
        "data": tag, "n_items": n, "n_works": int(len(np.unique(labels))), "embedding": emb_desc,
        "align_config": cfg.__dict__, "rows": rows, "scale": scale, "tuning": tuning,
        "chosen": {str(k): v for k, v in chosen.items()},
    }, args=vars(args), seconds=time.perf_counter() - t_start)


if __name__ == "__main__":
    main()
