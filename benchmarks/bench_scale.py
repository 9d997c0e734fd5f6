"""Scale: flat, HNSW and IVF-PQ at 100k, 1M and (memory allowing) 10M vectors --
build time, memory per vector, single-query latency, batched throughput and
recall@10 against exact (flat) search, with a sweep of each index's
query-time knob.

Vectors: synthetic clustered unit vectors, D=128, with the structure of real
embeddings (works of 13 versions near their work's centre plus singletons,
anisotropic spectrum, spread calibrated to MAP ~0.60 at 15k; see
``_common.ClusteredStream``; ``--spectrum 0 --spread 1.5`` = isotropic, the
worst case for ANN).
Queries are *new* versions of indexed works (held out), as a query by file.

Indexes are built by the product's own code: ``choose_index(n, 128, kind)``
gives the parameters, ``coversearch.index.store.build_faiss`` builds. The
"auto" row of each kind is exactly what ``build-index --index-type KIND``
builds; the other rows change only the query-time knob (``efSearch``,
``nprobe``), or re-rank IVF-PQ's top 100 or 1000 with the exact vectors (which every
index folder keeps in ``vectors.npy``). ``--hnsw-ef-construction`` overrides
the spec's efConstruction at >= 1M (recorded in the JSON and the setting's
name); HNSW is not built at 10M (auto picks IVF-PQ there).

Latency is per single query on 1 OpenMP thread (FAISS parallelises over
queries, so one query cannot use a second core; pinning avoids fork/join
noise from the other jobs on this shared machine); throughput is batched on
all threads. ``speedup_p50`` is flat's p50 over the setting's p50 with flat
queries interleaved among the setting's (every 4th; every 20th at 10M), so
both see the same load. Memory per vector is the index's structural size (codes, graph
links, ids, centroids) divided by n; the JSON also records the process RSS
growth during the build.

Usage::

    python benchmarks/bench_scale.py [--quick] [--sizes 100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ClusteredStream, Timer, current_rss_bytes, percentiles_ms, table, write_result  # noqa: E402

DIM = 128
K = 10
RERANK = (100, 1000)  # IVF-PQ candidate counts re-scored exactly


def _faiss():
    from coversearch.index.store import _faiss as product_faiss

    return product_faiss()


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) * 1024
    return 0


def structural_bytes(index) -> int:
    """Bytes held by an index's data structures (not Python/allocator overhead)."""
    faiss = _faiss()
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexFlat):
        return idx.ntotal * idx.d * 4
    if isinstance(idx, faiss.IndexHNSW):
        h = idx.hnsw
        return (structural_bytes(idx.storage) + h.neighbors.size() * 4 + h.levels.size() * 4
                + h.offsets.size() * 8)
    ivf = faiss.extract_index_ivf(idx)
    inv = ivf.invlists
    listed = sum(inv.list_size(i) for i in range(inv.nlist)) * (inv.code_size + 8)
    pq = faiss.downcast_index(idx).pq if hasattr(faiss.downcast_index(idx), "pq") else None
    pq_bytes = pq.centroids.size() * 4 if pq is not None else 0
    return listed + structural_bytes(ivf.quantizer) + pq_bytes


def build_flat(stream: ClusteredStream):
    """Exact index filled chunk by chunk (no second copy of the vectors)."""
    faiss = _faiss()
    index = faiss.IndexFlatIP(DIM)
    gen_s = 0.0
    add_s = 0.0
    for lo in range(0, stream.n, ClusteredStream.STEP):
        t0 = time.perf_counter()
        x = stream.chunk(lo)
        t1 = time.perf_counter()
        index.add(x)
        add_s += time.perf_counter() - t1
        gen_s += t1 - t0
    xb = faiss.rev_swig_ptr(index.get_xb(), stream.n * DIM).reshape(stream.n, DIM)  # view, no copy
    return index, xb, add_s, gen_s


def single_latency(index, queries: np.ndarray, n: int, k: int = K, knob=None, ref=None, ref_every: int = 4) -> dict:
    """p50/p99 of one-at-a-time searches on 1 thread.

    With ``ref`` (the flat index), every ``ref_every``-th query is also run on
    it, interleaved, and ``speedup_p50`` = flat p50 / this p50: both sides then
    see the same load from the other jobs on this shared machine.
    """
    faiss = _faiss()
    faiss.omp_set_num_threads(1)
    samples, ref_samples = [], []
    for i in range(min(n, len(queries))):
        q = queries[i : i + 1]
        t0 = time.perf_counter()
        (knob or index.search)(q, k)
        samples.append(time.perf_counter() - t0)
        if ref is not None and i % ref_every == 0:
            t0 = time.perf_counter()
            ref.search(q, k)
            ref_samples.append(time.perf_counter() - t0)
    _faiss()  # back to the product's thread count
    out = percentiles_ms(samples, (50, 99))
    if ref_samples:
        out["speedup_p50"] = round(float(np.median(ref_samples) / np.median(samples)), 1)
    return out


def batched(fn, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """(ids, queries/s) of one batched search on all threads."""
    _faiss()
    t0 = time.perf_counter()
    ids = fn(queries)
    return ids, len(queries) / (time.perf_counter() - t0)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    """Share of flat's top-k found in the approximate top-k."""
    hits = sum(len(np.intersect1d(a[a >= 0], b)) for a, b in zip(ids, truth))
    return hits / truth.size


def same_work_recall(ids: np.ndarray, truth: np.ndarray, labels: np.ndarray, qlab: np.ndarray) -> float:
    """Share of the *same-work* items of flat's top-k that the approximate
    top-k also finds: what matters for retrieval quality (missing a noise
    neighbour of another work does not change MAP)."""
    want = got = 0
    for a, b, ql in zip(ids, truth, qlab):
        rel = b[labels[b] == ql]
        want += len(rel)
        got += len(np.intersect1d(a[a >= 0], rel))
    return got / max(want, 1)


def rerank_search(index, xb: np.ndarray, q: np.ndarray, k: int = K, cand: int = 100) -> np.ndarray:
    """IVF-PQ top ``cand`` re-scored with the exact vectors -> top k ids."""
    _, c = index.search(q, cand)
    out = np.empty((len(q), k), np.int64)
    for i in range(len(q)):
        ci = c[i][c[i] >= 0]
        s = xb[ci] @ q[i]
        out[i] = ci[np.argsort(-s)[:k]]
    return out


def bench_size(n: int, args, rows: list[dict], notes: list[str]) -> None:
    from coversearch.index.choose import choose_index
    from coversearch.index.store import build_faiss, configure

    faiss = _faiss()
    stream = ClusteredStream(n, DIM, seed=0, spread=args.spread, spectrum=args.spectrum)
    nq = args.queries if n < 5_000_000 else max(100, args.queries // 5)
    queries, qlab = stream.queries(nq)
    labels = stream.labels
    auto = choose_index(n, DIM)
    print(f"\n== n={n:,}: auto choice {auto.kind} {auto.params} ({auto.note})", flush=True)

    rss0 = current_rss_bytes()
    flat, xb, add_s, gen_s = build_flat(stream)
    flat_rss = current_rss_bytes() - rss0
    print(f"  flat: generated in {gen_s:.0f} s, added in {add_s:.1f} s", flush=True)
    truth, flat_qps = batched(lambda q: flat.search(q, K)[1], queries)
    n_lat_flat = args.latency_queries if n < 5_000_000 else 10
    flat_lat = single_latency(flat, queries, n_lat_flat)
    base = {"n": n, "auto_kind": auto.kind}
    rows.append({**base, "kind": "flat", "setting": "exact", "auto": auto.kind == "flat", "build_s": round(add_s, 2),
                 "bytes_per_vec": round(structural_bytes(flat) / n, 1), "rss_growth_MB": round(flat_rss / 1e6),
                 **flat_lat, "batched_qps": round(flat_qps, 1), "recall_at_10": 1.0, "same_work_recall": 1.0,
                 "speedup_p50": 1.0})
    flat_p50 = flat_lat["p50_ms"]
    ref_every = 4 if n < 5_000_000 else 20  # interleaved flat queries per ANN query
    print(f"  flat p50 {flat_p50} ms, {flat_qps:.0f} q/s batched", flush=True)

    kinds = [k for k in (["hnsw", "ivfpq"] if n < 5_000_000 else ["ivfpq"]) if k in args.kinds]
    if n >= 5_000_000:
        notes.append(f"n={n:,}: HNSW not built (auto picks {auto.kind}; the 1M build rate x10 is far past this run's budget)")
    for kind in kinds:
        spec = choose_index(n, DIM, kind=kind)
        built = spec
        if kind == "hnsw" and n >= 1_000_000 and args.hnsw_ef_construction:
            from coversearch.index.choose import IndexSpec

            built = IndexSpec("hnsw", {**spec.params, "efConstruction": args.hnsw_ef_construction}, "bench")
            notes.append(f"n={n:,}: HNSW built with efConstruction={args.hnsw_ef_construction} "
                         f"(spec: {spec.params['efConstruction']}) to keep the run short")
        rss0 = current_rss_bytes()
        with Timer() as t:
            index = build_faiss(xb, built)
        rss = current_rss_bytes() - rss0
        sb = structural_bytes(index)
        print(f"  {kind} {built.params}: built in {t.s:.0f} s, {sb / n:.0f} B/vec", flush=True)
        common = {**base, "kind": kind, "build_s": round(t.s, 1), "bytes_per_vec": round(sb / n, 1),
                  "rss_growth_MB": round(rss / 1e6), "build_params": built.params}
        if kind == "hnsw":
            hn = faiss.downcast_index(index).hnsw
            for ef in args.ef_search:
                hn.efSearch = ef
                ids, qps = batched(lambda q: index.search(q, K)[1], queries)
                lat = single_latency(index, queries, args.latency_queries, ref=flat, ref_every=ref_every)
                rows.append({**common, "setting": f"efC={built.params['efConstruction']} efSearch={ef}", "auto": ef == spec.params["efSearch"], **lat,
                             "batched_qps": round(qps, 1), "recall_at_10": round(recall(ids, truth), 4),
                             "same_work_recall": round(same_work_recall(ids, truth, labels, qlab), 4)})
        else:
            ivf = faiss.extract_index_ivf(index)
            for npb in sorted({p for p in args.nprobe if p <= spec.params["nlist"]} | {spec.params["nprobe"]}):
                ivf.nprobe = npb
                for rr in (0,) + RERANK:
                    if rr:
                        fn = lambda q, rr=rr: rerank_search(index, xb, q, K, rr)  # noqa: E731
                        knob = lambda q, k, rr=rr: rerank_search(index, xb, q, k, rr)  # noqa: E731
                    else:
                        fn = lambda q: index.search(q, K)[1]  # noqa: E731
                        knob = None
                    ids, qps = batched(fn, queries)
                    lat = single_latency(index, queries, args.latency_queries, knob=knob, ref=flat,
                                         ref_every=ref_every)
                    rows.append({**common, "setting": f"nprobe={npb}" + (f"+rerank{rr}" if rr else ""),
                                 "auto": npb == spec.params["nprobe"] and not rr, **lat,
                                 "batched_qps": round(qps, 1), "recall_at_10": round(recall(ids, truth), 4),
                                 "same_work_recall": round(same_work_recall(ids, truth, labels, qlab), 4)})
            configure(index, spec)
        last = [r for r in rows if r["n"] == n and r["kind"] == kind]
        print(table(last, ["setting", "auto", "p50_ms", "p99_ms", "batched_qps", "recall_at_10", "same_work_recall",
                          "speedup_p50"]),
              flush=True)
        del index
    del flat, xb


def recommend(rows: list[dict]) -> list[dict]:
    """Per size and kind: the fastest setting with recall@10 >= 0.95, if any."""
    out = []
    for n in sorted({r["n"] for r in rows}):
        for kind in ("flat", "hnsw", "ivfpq"):
            cand = [r for r in rows if r["n"] == n and r["kind"] == kind]
            if not cand:
                continue
            good = [r for r in cand if r["recall_at_10"] >= 0.95]
            best = min(good, key=lambda r: r["p50_ms"]) if good else max(cand, key=lambda r: r["recall_at_10"])
            auto = next((r for r in cand if r["auto"]), None)
            out.append({"n": n, "kind": kind, "best_setting": best["setting"], "recall_at_10": best["recall_at_10"],
                        "same_work_recall": best["same_work_recall"], "p50_ms": best["p50_ms"],
                        "speedup_p50": best["speedup_p50"],
                        "bytes_per_vec": best["bytes_per_vec"], "build_s": best["build_s"],
                        "reaches_0.95": bool(good),
                        "auto_recall": auto["recall_at_10"] if auto else None,
                        "auto_speedup": auto["speedup_p50"] if auto else None})
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries for recall (1/5 at 10M)")
    ap.add_argument("--latency-queries", type=int, default=200, help="single queries timed per setting")
    ap.add_argument("--ef-search", default="16,32,64,128,256,512")
    ap.add_argument("--nprobe", default="8,16,32,64,128,256,512")
    ap.add_argument("--hnsw-ef-construction", type=int, default=0,
                    help="override efConstruction at n >= 1M (0 = the spec's 200; 64 builds ~3x faster)")
    ap.add_argument("--spread", type=float, default=0.93, help="version noise (see _common.ClusteredStream)")
    ap.add_argument("--spectrum", type=float, default=1.0, help="variance power law; 0 = isotropic")
    ap.add_argument("--kinds", default="hnsw,ivfpq", help="approximate kinds to build (flat always)")
    ap.add_argument("--name", default="scale", help="result name (results/<name>.json)")
    ap.add_argument("--quick", action="store_true", help="100k only, fewer queries and settings")
    args = ap.parse_args(argv)
    if args.quick:
        if args.sizes == ap.get_default("sizes"):
            args.sizes = "100000"
        args.queries, args.latency_queries = 300, 100
        args.ef_search, args.nprobe = "32,128", "16,64"
    args.kinds = args.kinds.split(",")
    args.ef_search = [int(x) for x in args.ef_search.split(",")]
    args.nprobe = [int(x) for x in args.nprobe.split(",")]
    sizes = [int(x) for x in args.sizes.split(",")]
    t_all = time.perf_counter()
    rows: list[dict] = []
    notes: list[str] = []
    summary: dict = {}
    for n in sizes:
        need = n * DIM * 4 * 1.6 + 2e9  # flat storage + IVF-PQ codes + query buffers
        if mem_available() < need:
            notes.append(f"n={n:,} skipped: needs ~{need / 1e9:.0f} GB, {mem_available() / 1e9:.0f} GB available")
            print(notes[-1])
            continue
        bench_size(n, args, rows, notes)
        # written after every size, so a long run interrupted later keeps what it measured
        summary = finish(rows, notes, args, time.perf_counter() - t_all)
    return summary


def finish(rows: list[dict], notes: list[str], args, seconds: float) -> dict:
    """Print the summary tables and write the JSON of everything measured so far."""
    rec = recommend(rows)
    at_1m = [r for r in rec if r["n"] == 1_000_000 and r["kind"] != "flat"]
    met = [r for r in at_1m if r["recall_at_10"] >= 0.95 and r["speedup_p50"] >= 10]
    summary = {"target": "at 1M: recall@10 >= 0.95 at >= 10x lower p50 latency than flat",
               "measured_at_1M": bool(at_1m), "target_met": bool(met) if at_1m else None,
               "met_by": [f"{r['kind']} {r['best_setting']}" for r in met]}
    print(table(rows, ["n", "kind", "setting", "auto", "build_s", "bytes_per_vec", "p50_ms", "p99_ms",
                       "batched_qps", "recall_at_10", "same_work_recall", "speedup_p50"], title="\nAll settings"))
    print(table(rec, title="\nFastest setting reaching recall@10 >= 0.95, per size and kind"))
    for note in notes:
        print("note:", note)
    print(f"\ntarget at 1M: {summary['target_met']} ({', '.join(summary['met_by']) or 'none'})")
    write_result(args.name, {"rows": rows, "recommendation": rec, "notes": notes, "summary": summary},
                 args={k: v for k, v in vars(args).items()}, seconds=seconds)
    return summary

if __name__ == "__main__":
    main()
