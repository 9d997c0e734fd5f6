"""Milvus Lite against FAISS: build time, bytes per vector, single-query
latency, batched throughput and recall@10 against exact search, at 100k
vectors, for each index kind the chooser can pick (flat, HNSW, IVF).

Both go through the store interface coversearch uses at query time
(``FaissStore`` / ``MilvusStore`` in ``coversearch/index``), with the
parameters ``choose_index`` gives; on Milvus Lite ``ivfpq`` is built as
IVF_SQ8 (Lite has no IVF_PQ; same nlist/nprobe). Vectors are synthetic
(``_common.ClusteredStream``: works of 13 versions + singletons, D=128,
anisotropic; queries are held-out versions), not encoder output.

    python benchmarks/bench_milvus.py                 # 100k, flat/hnsw/ivfpq
    python benchmarks/bench_milvus.py --quick         # 20k, fewer queries
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, ClusteredStream, dir_bytes, percentiles_ms, table, write_result

K = 10


def exact_top(x: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    sims = q @ x.T  # (Q, N)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, 1), axis=1), 1)


def recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / truth.shape[1] for a, b in zip(ids, truth)]))


def single_latency(store, q: np.ndarray, n: int) -> dict:
    store.search(q[:1], K)  # warm-up
    samples = []
    for i in range(min(n, len(q))):
        t = time.perf_counter()
        store.search(q[i : i + 1], K)
        samples.append(time.perf_counter() - t)
    return percentiles_ms(samples)


def measure_store(name, store, build_s, nbytes, n, q, truth, args) -> dict:
    lat = single_latency(store, q, args.latency_queries)
    t = time.perf_counter()
    ids = np.concatenate([store.search(q[a : a + 100], K)[1] for a in range(0, len(q), 100)])
    qps = len(q) / (time.perf_counter() - t)
    row = {"engine": name, "index": getattr(store, "index_type", None) or args.kind_name, "build_s": round(build_s, 2),
           "bytes_per_vector": round(nbytes / n, 1), "p50_ms": round(lat["p50_ms"], 3), "p90_ms": round(lat["p90_ms"], 3),
           "p99_ms": round(lat["p99_ms"], 3), "batched_qps": round(qps, 1), "recall_at_10": round(recall(ids, truth), 4)}
    print(row, flush=True)
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--kinds", default="flat,hnsw,ivfpq")
    ap.add_argument("--queries", type=int, default=500, help="held-out queries for recall and throughput")
    ap.add_argument("--latency-queries", type=int, default=200, help="single queries timed per setting")
    ap.add_argument("--work", default=str(DATA / "bench-milvus"), help="scratch folder (removed first)")
    ap.add_argument("--quick", action="store_true", help="20k vectors, 200 queries, 100 timed")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.queries, args.latency_queries = 20_000, 200, 100
    t_all = time.perf_counter()
    from coversearch.index.choose import choose_index
    from coversearch.index.milvus_store import MilvusStore, client
    from coversearch.index.store import FaissStore, build_faiss, save_faiss

    stream = ClusteredStream(args.n)
    x = stream.all()
    q, _ = stream.queries(args.queries)
    truth = exact_top(x, q)
    cols = {"perf_id": [f"P_{i}" for i in range(args.n)], "work_id": [f"W_{w}" for w in stream.labels],
            "perf_title": [f"title {i}" for i in range(args.n)]}
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    uri = str(work / "lite.db")
    client(uri)  # start Milvus Lite once (not part of any build time)
    rows = []
    for kind in args.kinds.split(","):
        spec = choose_index(args.n, x.shape[1], kind=kind)
        args.kind_name = f"{spec.kind} {spec.params}"
        t = time.perf_counter()
        fs = FaissStore(build_faiss(x, spec))
        build = time.perf_counter() - t
        with tempfile.TemporaryDirectory(dir=work) as d:
            save_faiss(fs.index, Path(d) / "i.faiss")
            nb = (Path(d) / "i.faiss").stat().st_size
        rows.append({"kind": kind, **measure_store("faiss", fs, build, nb, args.n, q, truth, args)})
        rows[-1]["index"] = f"{spec.kind} {spec.params}"
        before = dir_bytes(uri)
        t = time.perf_counter()
        ms = MilvusStore.create(uri, f"bench_{kind}", x, cols, spec, description={"model_hash": "synthetic"})
        build = time.perf_counter() - t
        nb = dir_bytes(uri) - before
        rows.append({"kind": kind, **measure_store("milvus-lite", ms, build, nb, args.n, q, truth, args)})
        rows[-1]["index"] = f"{ms.index_type} {ms.search_params}"
        ms.drop()
    print(table(rows, ["kind", "engine", "index", "build_s", "bytes_per_vector", "p50_ms", "p90_ms", "p99_ms",
                       "batched_qps", "recall_at_10"], title=f"Milvus Lite vs FAISS, {args.n} synthetic vectors, D=128"))
    shutil.rmtree(work, ignore_errors=True)
    notes = ["synthetic clustered unit vectors (ClusteredStream), held-out queries; recall@10 vs exact inner product",
             "Milvus Lite bytes/vector = growth of its data folder (vectors + scalar fields perf_id/work_id/meta + index)",
             "FAISS bytes/vector = the index file only (vectors.npy and items.parquet sit beside it in an index folder)",
             "latency: one query per call through the store interface; Milvus Lite adds a gRPC round trip to a local server"]
    return write_result("milvus", {"rows": rows, "notes": notes}, args={k: v for k, v in vars(args).items() if k != "kind_name"},
                        seconds=time.perf_counter() - t_all)


if __name__ == "__main__":
    main()
