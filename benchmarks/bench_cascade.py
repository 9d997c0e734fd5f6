"""The re-rank cascade: choose its defaults on validation works, then measure it.

Two sub-commands, both through the product's own functions
(:func:`coversearch.rerank.score_query` via ``api.evaluate``, and the
offline replay of :mod:`coversearch.rerank.tune`):

``tune`` -- on a *validation* set (generated with a seed no model and no
evaluation set uses), align a seeded sample of queries once against their
K1 shortlist at the full rate and at each candidate coarse rate, then replay
the cascade for every (coarse rate, K2, weight, norm): MAP per setting and
the measured cost of each pass. This is where ``RerankConfig``'s
``fine`` / ``coarse`` defaults come from::

    nice -n 5 python benchmarks/bench_cascade.py tune --val-data data/val-benchmark-standard-s3031-h4096-n300

``table`` -- on index folders of evaluation sets (``coversearch build-index``
of the benchmark-structure sets, seed 2026): embedding only (all queries),
the default cascade and exhaustive alignment (every item aligned at the full
rate, ranked by the normalised Qmax, cosine breaking ties) on seeded query
samples; MAP, MR1, P@10, first-stage recall at K, seconds per query::

    nice -n 5 python benchmarks/bench_cascade.py table --index standard=data/cascade-idx-standard-n600 \\
        --index wide=data/cascade-idx-wide-n600 --queries 300 --exhaustive-queries 40 --jobs 2

Results go to ``benchmarks/results/cascade_tune.json`` and
``benchmarks/results/cascade_table.json``; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, table, write_result  # noqa: E402

COARSE_GRID = {"ds3-m6": dict(downsample=3, m=6), "ds4-m5": dict(downsample=4, m=5), "ds6-m3": dict(downsample=6, m=3)}


def cmd_tune(args) -> None:
    from coversearch import api
    from coversearch.align import AlignConfig
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.rerank import RerankConfig, align_shortlist, cosine_shortlist
    from coversearch.rerank.tune import AlignedShortlist, tune

    t_start = time.perf_counter()
    base = RerankConfig()
    net, info = load_checkpoint(args.model)
    cache, _ = api.prepare_data(args.val_data, "hpcp", jobs=1, progress=False, log=lambda m: None)
    vec = embed_sequences(net, cache.sequences(), threads=args.jobs)
    labels = np.array(cache.work_ids)
    _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cand = np.flatnonzero(counts[inv] >= 2)
    q = np.sort(np.random.default_rng(args.seed).choice(cand, min(args.queries, len(cand)), replace=False))
    cos = (vec[q] @ vec.T).astype(np.float64)
    k1 = args.k1 or base.first_stage_k(len(labels) - 1)
    print(f"{args.val_data}: {len(labels)} items, {len(q)} queries, K1 = {k1}", file=sys.stderr)
    align_shortlist(cache.sequence(0), [cache.sequence(1)], config=base.align)  # compile outside the timing
    coarse_cfgs = {name: AlignConfig(**kw) for name, kw in COARSE_GRID.items()}
    per_pass_s = {"full": 0.0, **{name: 0.0 for name in coarse_cfgs}}
    store: dict[str, list] = {name: [] for name in coarse_cfgs}
    full = []
    for i, qrow in enumerate(q):
        rows = cosine_shortlist(cos[i], int(qrow), k1)
        qseq, cands = cache.sequence(int(qrow)), [cache.sequence(int(r)) for r in rows]
        with Timer() as t:
            raw, tq, tc = align_shortlist(qseq, cands, config=base.align, jobs=args.jobs)
        per_pass_s["full"] += t.s
        full.append((rows, raw, tq, tc))
        for name, cc in coarse_cfgs.items():
            with Timer() as t:
                store[name].append(align_shortlist(qseq, cands, config=cc, jobs=args.jobs))
            per_pass_s[name] += t.s
        if i % 20 == 0:
            print(f"  query {i}/{len(q)}  full {per_pass_s['full']:.0f} s", file=sys.stderr)
    # ms per pair on `jobs` cores
    pair_ms = {name: 1e3 * s / (len(q) * k1) for name, s in per_pass_s.items()}
    rows_out = []
    for name, cc in coarse_cfgs.items():
        sls = [AlignedShortlist(int(qrow), r, cos[i, r], raw, tq, tc, *store[name][i])
               for i, (qrow, (r, raw, tq, tc)) in enumerate(zip(q, full))]
        k1s = sorted({min(k, k1) for k in args.k1_grid} | {k1}) if args.k1_grid else [k1]
        grid = tune(sls, cos, labels, weights=args.weights, norms=(base.norm,) if args.fixed_norm else
                    ("min_len", "sqrt_prod", "query_max"), fine_sizes=tuple(args.fine) + (None,),
                    shortlist_sizes=k1s, base=dataclasses.replace(base, coarse=cc))
        for g in grid:
            g_k1 = g["shortlist"] or k1
            coarse_used = g["fine"] is not None and g["fine"] < g_k1
            k2 = min(g["fine"] or g_k1, g_k1)
            cost = (g_k1 * pair_ms[name] if coarse_used else 0.0) + k2 * pair_ms["full"]
            rows_out.append({"K1": g_k1, "coarse": name if coarse_used else "none", "K2": k2, "norm": g["norm"],
                             "weight": g["weight"], "map": g["map"], "mr1": g["mr1"], "p_at_10": g["p_at_10"],
                             "align_ms_per_query": cost})
    # keep one row per setting (the no-coarse rows repeat across coarse configs)
    seen, uniq = set(), []
    for r in sorted(rows_out, key=lambda r: (-r["map"], r["align_ms_per_query"])):
        key = (r["K1"], r["coarse"], r["K2"], r["norm"], r["weight"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    emb = next(r for r in uniq if r["weight"] == 0.0)
    print(table(uniq[:25], title=f"validation: {len(q)} queries, K1 {k1}, pair ms on {args.jobs} cores {pair_ms}"))
    # the best setting at each (K1, K2, coarse): what K1 / K2 / the coarse rate buy
    best_at: dict = {}
    for r in uniq:
        best_at.setdefault((r["K1"], r["K2"], r["coarse"]), r)
    print(table(sorted(best_at.values(), key=lambda r: (r["K1"], r["K2"], r["coarse"])),
                title="best weight/norm per (K1, K2, coarse rate)"))
    print(f"embedding only: MAP {emb['map']:.4f}; load average {os.getloadavg()}")
    write_result("cascade_tune", {"val_data": str(Path(args.val_data).resolve()), "n_items": int(len(labels)),
                                  "n_queries": int(len(q)), "K1": int(k1), "model_hash": info["model_hash"],
                                  "pair_ms": pair_ms, "coarse_grid": COARSE_GRID, "rows": uniq,
                                  "best_per_k1_k2_coarse": list(best_at.values()), "embedding_only": emb,
                                  "loadavg_end": os.getloadavg()},
                 args={k: v for k, v in vars(args).items() if k != "fn"}, seconds=time.perf_counter() - t_start)


def cmd_table(args) -> None:
    from coversearch import api
    from coversearch.evaluate.retrieval import format_recall
    from coversearch.index.bundle import load_bundle
    from coversearch.rerank import RerankConfig

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    rows = []
    for spec in args.index:
        name, path = spec.split("=", 1)
        n = load_bundle(path, load_index=False).count
        runs = [("embedding only", dict()),
                ("default cascade", dict(rerank=True, max_queries=args.queries,
                                         rerank_config=api.load_rerank_config(path))),
                ("default cascade, exhaustive's queries", dict(rerank=True, max_queries=args.exhaustive_queries,
                                                                rerank_config=api.load_rerank_config(path))),
                ("exhaustive alignment", dict(rerank=True, max_queries=args.exhaustive_queries,
                                              rerank_config=RerankConfig(shortlist=n, fine=n, weight=1.0)))]
        if args.extra_k1:
            # the K1 a larger catalogue would use (15,000 -> 300): the alignment cost per query depends on
            # K1 and K2 only, so this times the 15,000 cascade's alignment part (not its FAISS search)
            cfg = dataclasses.replace(api.load_rerank_config(path), shortlist=args.extra_k1)
            runs.insert(2, (f"default cascade, K1 {args.extra_k1}", dict(rerank=True, max_queries=args.queries,
                                                                          rerank_config=cfg)))
            for pos, spec in enumerate(args.extra_setting, start=3):
                coarse, k2 = spec.split(":")
                alt = dataclasses.replace(cfg, coarse=dataclasses.replace(cfg.coarse, **COARSE_GRID[coarse]),
                                          fine=int(k2))
                runs.insert(pos, (f"cascade {coarse} K2 {k2}, K1 {args.extra_k1}",
                                  dict(rerank=True, max_queries=args.queries, rerank_config=alt)))
        for method, kw in runs:
            if kw.get("max_queries") == 0:
                continue
            print(f"{name}: {method} ...", file=sys.stderr)
            load = os.getloadavg()[0]
            m = api.evaluate(path, progress=False, jobs=args.jobs, **kw)
            nq = m["n_queries"]
            rows.append({"set": name, "items": m["n_items"], "method": method, "queries": nq,
                         "shortlist": m.get("shortlist"), "load_before": round(load, 2),
                         "load_after": round(os.getloadavg()[0], 2),
                         "map": m["map"], "mr1": m["mr1"], "p_at_10": m["p_at_10"],
                         "recall": {f"{100 * r['fraction']:g}%": round(r["recall"], 4) for r in m["recall_at_k"]},
                         "s_per_query": m["seconds"] / max(1, nq), "config": m.get("rerank_config")})
            print(f"  MAP {m['map']:.4f} MR1 {m['mr1']:.1f} P@10 {m['p_at_10']:.4f} {format_recall(m['recall_at_k'])}"
                  f"  {rows[-1]['s_per_query']:.3f} s/query", file=sys.stderr)
    print(markdown(rows, args.jobs))
    print(f"load average (1/5/15 min) at start {load_start}, at end {os.getloadavg()}")
    write_result(args.name, {"rows": rows, "jobs": args.jobs, "cpu_count": os.cpu_count(),
                             "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
                 args={k: v for k, v in vars(args).items() if k != "fn"}, seconds=time.perf_counter() - t_start)



def cmd_time(args) -> None:
    """Per-query wall and CPU time of ``query ID --rerank`` (the product path: FAISS search, the
    index's rerank.json, the cascade on the folder's sequences), the bundle loaded once."""
    from coversearch import api
    from coversearch.index.bundle import load_bundle

    t_start = time.perf_counter()
    b = load_bundle(args.index_dir)
    cfg = api.load_rerank_config(b)
    variants = [("default", cfg)]
    for spec in args.extra_setting:
        coarse, k2 = spec.split(":")
        variants.append((f"{coarse} K2 {k2}", dataclasses.replace(
            cfg, coarse=dataclasses.replace(cfg.coarse, **COARSE_GRID[coarse]), fine=int(k2))))
    ids = b.items.column("perf_id").to_pylist()
    q = np.random.default_rng(args.seed).choice(len(ids), min(args.queries, len(ids)), replace=False)
    seqs = b.sequences()
    from coversearch.rerank import align_shortlist

    align_shortlist(seqs.sequence(0), [seqs.sequence(1)], config=cfg.coarse)  # compile outside the timing
    align_shortlist(seqs.sequence(0), [seqs.sequence(1)], config=cfg.align)
    rows = []
    for name, c in variants:
        wall, cpu = [], []
        load0 = os.getloadavg()[0]
        for r in q:
            w0, c0 = time.perf_counter(), time.process_time()
            api.query(ids[int(r)], k=10, index_dir=args.index_dir, bundle=b, rerank=True,
                      shortlist=args.k1 or None, jobs=args.jobs, rerank_config=c)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        w0 = time.perf_counter()
        for r in q:
            b.search(np.asarray(b.vectors[int(r)])[None], args.k1 or cfg.first_stage_k(b.count - 1))
        search_s = (time.perf_counter() - w0) / len(q)
        rows.append({"setting": name, "K1": args.k1 or cfg.first_stage_k(b.count - 1), "K2": c.fine,
                     "coarse": f"ds{c.coarse.downsample}-m{c.coarse.m}", "queries": len(q),
                     "wall_s_median": float(np.median(wall)), "wall_s_mean": float(np.mean(wall)),
                     "wall_s_p90": float(np.percentile(wall, 90)), "cpu_s_mean": float(np.mean(cpu)),
                     "faiss_search_ms": 1e3 * search_s, "load_before": round(load0, 2),
                     "load_after": round(os.getloadavg()[0], 2)})
        print(rows[-1], file=sys.stderr)
    print(table(rows, title=f"{args.index_dir}: query --rerank, {args.jobs} cores"))
    write_result(args.name, {"index_dir": str(Path(args.index_dir).resolve()), "n_items": b.count, "rows": rows,
                             "jobs": args.jobs, "cpu_count": os.cpu_count()},
                 args={k: v for k, v in vars(args).items() if k != "fn"}, seconds=time.perf_counter() - t_start)


def markdown(rows, jobs) -> str:
    head = ("| set | items | method | queries | MAP | MR1 | P@10 | recall@K 0.5 / 1 / 2 / 5 / 10 % | s per query "
            f"({jobs} cores) |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        rec = " / ".join(f"{v:.2f}" for v in r["recall"].values())
        lines.append(f"| {r['set']} | {r['items']:,} | {r['method']} | {r['queries']:,} | {r['map']:.3f} | "
                     f"{r['mr1']:.1f} | {r['p_at_10']:.3f} | {rec} | {r['s_per_query']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tune", help="choose K2 and the coarse rate on validation works")
    t.add_argument("--val-data", required=True, help="validation Da-TACOS root (a seed no evaluation set uses)")
    t.add_argument("--model", default=None)
    t.add_argument("--queries", type=int, default=120)
    t.add_argument("--k1", type=int, default=None, help="shortlist (default: RerankConfig's rule)")
    t.add_argument("--fine", type=int, nargs="+", default=[25, 50, 100])
    t.add_argument("--k1-grid", type=int, nargs="+", default=[],
                   help="also replay these smaller K1 (the stored shortlists are aligned once at --k1)")
    t.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0])
    t.add_argument("--fixed-norm", action="store_true", help="only the default norm")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--jobs", type=int, default=2)
    t.set_defaults(fn=cmd_tune)
    b = sub.add_parser("table", help="embedding / cascade / exhaustive alignment on index folders")
    b.add_argument("--index", action="append", required=True, help="NAME=INDEX_DIR (repeatable)")
    b.add_argument("--queries", type=int, default=300, help="seeded queries for the cascade")
    b.add_argument("--exhaustive-queries", type=int, default=40, help="seeded queries for exhaustive alignment (0 = skip)")
    b.add_argument("--jobs", type=int, default=2)
    b.add_argument("--extra-k1", type=int, default=0,
                   help="also time the default cascade with this fixed K1 (e.g. 300, what 15,000 items use)")
    b.add_argument("--extra-setting", action="append", default=[], metavar="COARSE:K2",
                   help="with --extra-k1: also time a cheaper setting, e.g. ds6-m3:50 (repeatable)")
    b.add_argument("--name", default="cascade_table")
    b.set_defaults(fn=cmd_table)
    tm = sub.add_parser("time", help="wall and CPU time per query of query --rerank (the product path)")
    tm.add_argument("--index-dir", required=True)
    tm.add_argument("--k1", type=int, default=None, help="fixed K1 (e.g. 300: what 15,000 items use)")
    tm.add_argument("--extra-setting", action="append", default=[], metavar="COARSE:K2")
    tm.add_argument("--queries", type=int, default=50)
    tm.add_argument("--seed", type=int, default=0)
    tm.add_argument("--jobs", type=int, default=2)
    tm.add_argument("--name", default="cascade_time")
    tm.set_defaults(fn=cmd_time)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
