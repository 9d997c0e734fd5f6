"""The Ray pipeline (``build-index --engine ray``) against the local path on
the same machine and the same performances: wall time per stage, throughput,
Ray's overhead, and that both give the same items, vectors and MAP.

Local path = ``build_cache`` (2 reader processes, a fresh cache file, so
nothing is reused) + ``embed_sequences`` (2 torch threads, batch 8). Ray path
= ``scale.ray_build.run_pipeline`` on a local Ray started here (2 CPUs,
readers 0.75 CPU each, one encoder actor of 0.5 CPU, 1 torch thread), Ray's
start-up timed apart. The index write (same bundle writer for both) is not
timed. Each stage's CPU time is reported for the local path (this process +
its reader children); Ray's workers are not this process's children, so for
Ray only wall time is reported.

    python benchmarks/bench_ray.py            # data/benchmark-standard-s2026-h4096-n600 (3,000 performances)
    python benchmarks/bench_ray.py --data DIR
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, table, write_result


def cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "benchmark-standard-s2026-h4096-n600"))
    ap.add_argument("--model", default=None, help="encoder (default: shipped)")
    ap.add_argument("--feature", default="hpcp")
    ap.add_argument("--order", default="local,ray", help="which path runs first")
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    import torch

    from coversearch.data.layout import find_performances
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.features.cache import build_cache
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.scale.ray_build import EMBED_CPUS, READ_CPUS, run_pipeline

    data = Path(args.data)
    if not (data / ".coversearch-synth.json").is_file() and not any(data.glob("da-tacos_*")):
        raise SystemExit(f"no data set at {data}")
    net, info = load_checkpoint(args.model)
    entries = find_performances(data, args.feature)
    n = len(entries)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=DATA))
    out, rows = {}, []
    try:
        for path in args.order.split(","):
            load = os.getloadavg()[0]
            if path == "local":
                torch.set_num_threads(2)
                c0, t0 = cpu_s(), time.perf_counter()
                cache, _ = build_cache(data, args.feature, cache_path=work / "prepared.arrow", jobs=2, progress=False)
                c1, t1 = cpu_s(), time.perf_counter()
                vec = embed_sequences(net, cache.sequences(), batch_size=8)
                c2, t2 = cpu_s(), time.perf_counter()
                out["local"] = (cache.perf_ids, vec)
                rows.append({"path": "local", "n": n, "load_at_start": round(load, 1), "start_s": 0.0,
                             "read_prepare_s": round(t1 - t0, 1), "embed_s": round(t2 - t1, 1),
                             "total_s": round(t2 - t0, 1), "perf_per_s": round(n / (t2 - t0), 1),
                             "read_cpu_ms_per_perf": round(1000 * (c1 - c0) / n, 2),
                             "embed_cpu_ms_per_perf": round(1000 * (c2 - c1) / n, 2)})
            else:
                t0 = time.perf_counter()
                r = run_pipeline(entries, model_path=info["path"], model_hash=info["model_hash"], feature=args.feature,
                                 shard_dir=work / "shards", timeout=3 * 3600)
                t1 = time.perf_counter()
                out["ray"] = (r.columns["perf_id"], r.vectors)
                s = r.seconds
                rows.append({"path": "ray", "n": n, "load_at_start": round(load, 1), "start_s": s["start"],
                             "read_prepare_s": None, "embed_s": None, "pipeline_s": s["pipeline"],
                             "collect_s": s["collect"], "total_s": round(t1 - t0, 1),
                             "perf_per_s": round(n / (t1 - t0), 1),
                             "perf_per_s_excl_start": round(n / (t1 - t0 - s["start"]), 1)})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ids_l, vec_l = out["local"]
    ids_r, vec_r = out["ray"]
    labels = np.array([e.work_id for e in entries])
    same = {"items_identical": ids_l == ids_r, "max_abs_vector_diff": float(np.abs(vec_l - vec_r).max()),
            "map_local": retrieval_metrics(vec_l, labels)["map"], "map_ray": retrieval_metrics(vec_r, labels)["map"]}
    loc = next(r for r in rows if r["path"] == "local")
    ray = next(r for r in rows if r["path"] == "ray")
    overhead = {"ray_start_s": ray["start_s"], "ray_minus_local_s": round(ray["total_s"] - loc["total_s"], 1),
                "ray_over_local": round(ray["total_s"] / loc["total_s"], 2),
                "cpu_ms_per_perf_local": round(loc["read_cpu_ms_per_perf"] + loc["embed_cpu_ms_per_perf"], 2)}
    print(table(rows, title=f"Ray vs local, {n} performances of {data.name}"))
    print(same)
    print(overhead)
    return write_result("ray", {"rows": rows, "equality": same, "overhead": overhead, "model_hash": info["model_hash"],
                                "ray_plan": {"local_cpus": 2, "read_cpus": READ_CPUS, "embed_cpus": EMBED_CPUS,
                                             "embed_actors": 1}},
                        args=vars(args), seconds=time.perf_counter() - t_all)


if __name__ == "__main__":
    main()
