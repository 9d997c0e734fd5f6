"""Query: in-process latency (one query, k=10), batched throughput, and the wall
time of the whole ``coversearch query P_22 --k 10`` process, cold and warm.

Vectors: the embeddings of an existing index folder of >= 10,000 items if one
is given (``--index-dir``), else 15,000 synthetic clustered unit vectors with
the Da-TACOS benchmark's structure (1,000 works x 13 versions + 2,000
singletons, D=128, MAP ~0.60; see ``_common.ClusteredStream``), written as a real
index folder (``write_bundle``, flat, as ``choose_index`` picks at 15k) under
``data/bench-query-index``. A flat search costs the same for any vectors of
that shape, so the latency does not depend on which.

Three in-process levels are timed per query: the raw FAISS search, the
bundle's search (FAISS + dropping the query itself, what the CLI runs), and
``api.query`` (id lookup + search + result records). The process time is the
CLI run by ``subprocess``; "cold" evicts the index files and the Python
installation (stdlib + site-packages) from the page cache first
(``posix_fadvise(DONTNEED)``; pages mapped by running processes stay), "warm"
is the median of the next runs. ``python -X importtime`` gives the profile of
where the process time goes.

Usage::

    python benchmarks/bench_query.py [--quick] [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, Timer, clustered_unit_vectors, percentiles_ms, table, write_result  # noqa: E402

N = 15_000
DIM = 128
QUERY_ID = "P_22"


def make_index(path: Path, n: int = N, dim: int = DIM) -> dict:
    """Write (or reuse) a synthetic 15k index folder; return its description."""
    from coversearch.index.bundle import load_bundle, write_bundle

    try:
        b = load_bundle(path, load_index=False)
        if b.count == n and b.manifest.extra.get("bench") == "synthetic-clustered-v2":
            return {"vectors": "synthetic clustered (1,000 works x 13 + 2,000 singletons)", "path": str(path)}
    except Exception:  # noqa: BLE001 -- anything wrong: rebuild it
        pass
    x, labels = clustered_unit_vectors(n, dim, seed=0)
    cols = {"perf_id": [f"P_{i}" for i in range(n)], "work_id": [f"W_{w}" for w in labels]}
    write_bundle(path, x, cols, manifest_fields={"model_hash": "synthetic", "extra": {"bench": "synthetic-clustered-v2"}})
    return {"vectors": "synthetic clustered (1,000 works x 13 + 2,000 singletons)", "path": str(path)}


def in_process(index_dir: Path, n_queries: int) -> tuple[list[dict], list[dict]]:
    """Per-query latency at three levels, and batched throughput."""
    from coversearch import api
    from coversearch.index.bundle import load_bundle
    from coversearch.index.store import search as faiss_search

    b = load_bundle(index_dir)
    ids = b.items.column("perf_id").to_pylist()
    vec = np.ascontiguousarray(b.vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(ids), min(n_queries, len(ids)), replace=False)
    for r in rows[:20]:  # warm-up: page in vectors, start FAISS's thread pool
        faiss_search(b.index, vec[r : r + 1], 10)
    import faiss

    def raw_1thread(r):
        # what a single query costs without OpenMP fork/join (store._faiss resets it next call)
        faiss.omp_set_num_threads(1)
        b.index.search(vec[r : r + 1], 11)

    levels = {
        "faiss search (store.search)": lambda r: faiss_search(b.index, vec[r : r + 1], 10),
        "faiss search, 1 OpenMP thread": raw_1thread,
        "bundle.search (drops self)": lambda r: b.search(vec[r], 10, exclude_rows=[int(r)]),
        "api.query (by id, records)": lambda r: api.query(ids[r], k=10, index_dir=index_dir),
    }
    samples = {name: [] for name in levels}
    # levels interleaved in blocks of 25 queries, so the other jobs on this
    # shared machine disturb every level alike
    for s in range(0, len(rows), 25):
        for name, fn in levels.items():
            block = rows[s : s + 25]
            if name.startswith("api"):  # re-opens the folder per call, as a one-shot process: fewer
                block = block[:3]
            for r in block:
                t0 = time.perf_counter()
                fn(int(r))
                samples[name].append(time.perf_counter() - t0)
    lat = [{"level": name, "queries": len(v), **percentiles_ms(v), "mean_ms": round(1e3 * float(np.mean(v)), 4)}
           for name, v in samples.items()]
    thr = []
    for bs in (1, 16, 256, len(ids)):
        q = vec[:bs] if bs < len(ids) else vec
        reps = max(1, 512 // bs)
        with Timer() as t:
            for _ in range(reps):
                faiss_search(b.index, q, 10)
        thr.append({"batch": bs, "queries": bs * reps, "seconds": round(t.s, 4),
                    "queries_per_s": round(bs * reps / t.s, 1)})
    return lat, thr


def _python_files() -> list[Path]:
    """Directories holding the Python installation the CLI loads."""
    paths = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return [Path(p) for p in paths if p and Path(p).is_dir()]


def evict_tree(paths: list[Path]) -> int:
    """Drop every regular file under ``paths`` from the page cache; count files."""
    n = 0
    for root in paths:
        for dirpath, _, names in os.walk(root):
            for name in names:
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    n += 1
                finally:
                    os.close(fd)
    return n


def cli_cmd(index_dir: Path) -> list[str]:
    exe = shutil.which("coversearch", path=str(Path(sys.executable).parent)) or "coversearch"
    return [exe, "query", QUERY_ID, "--k", "10", "--index-dir", str(index_dir)]


def run_cli(index_dir: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole CLI process (fails loudly on a non-zero exit).

    CPU time (user + sys of the child) is what the process costs regardless of
    how many other jobs share the machine; wall time is what a user waits.
    """
    import resource

    cmd = cli_cmd(index_dir)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, **(env or {})))
    s = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.strip()[:300]}")
    return s, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def import_profile(index_dir: Path, top: int = 8) -> tuple[list[dict], float]:
    """Top-level imports of the CLI by cumulative time (``-X importtime``), and
    the bare interpreter's start-up time for comparison."""
    cmd = [sys.executable, "-X", "importtime"] + cli_cmd(index_dir)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    rows = []
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cum_us, name = line[len("import time:"):].split("|")
        if name.startswith("  "):  # nested import: counted in its parent's cumulative
            continue
        rows.append({"module": name.strip(), "cumulative_ms": round(int(cum_us) / 1e3, 1)})
    rows.sort(key=lambda r: -r["cumulative_ms"])
    rows.insert(0, {"module": "(all top-level imports)", "cumulative_ms": round(sum(r["cumulative_ms"] for r in rows), 1)})
    with Timer() as t:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    return rows[: top + 1], t.s


def stage_profile(index_dir: Path) -> list[dict]:
    """Cumulative seconds of the CLI's stages in one warm process (cProfile)."""
    import pstats
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "query.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out)] + cli_cmd(index_dir),
                       capture_output=True, check=True, cwd=REPO)
        st = pstats.Stats(str(out))
    want = [("cli.py", "query_cmd"), ("api.py", "query"), ("bundle.py", "load_bundle"), ("table.py", "read_items"),
            ("store.py", "load_faiss"), ("bundle.py", "search"), ("bundle.py", "_row_map")]
    rows = []
    for (file, line, func), (_cc, _nc, _tt, ct, _callers) in st.stats.items():
        for wf, wfn in want:
            if file.endswith(wf) and func == wfn and "coversearch" in file:
                rows.append({"stage": f"{wf}:{func}", "cumulative_ms": round(ct * 1e3, 1)})
    rows.sort(key=lambda r: -r["cumulative_ms"])
    rows.insert(0, {"stage": "(whole process, under cProfile)", "cumulative_ms": round(st.total_tt * 1e3, 1)})
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", type=Path, default=None, help="an existing index of >= 10,000 items")
    ap.add_argument("--queries", type=int, default=2000, help="single queries timed per level")
    ap.add_argument("--warm-runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="500 queries, 3 warm runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.queries, args.warm_runs = min(args.queries, 500), min(args.warm_runs, 3)
    t_all = time.perf_counter()
    if args.index_dir:
        index_dir, vinfo = args.index_dir, {"vectors": "index folder", "path": str(args.index_dir)}
    else:
        index_dir = DATA / "bench-query-index"
        vinfo = make_index(index_dir)
    lat, thr = in_process(index_dir, args.queries)

    n_evicted = evict_tree([index_dir] + _python_files() + [REPO / "coversearch"])
    cold, cold_cpu = run_cli(index_dir)
    warm, warm_cpu = zip(*[run_cli(index_dir) for _ in range(args.warm_runs)])
    # the same with FAISS on one OpenMP thread (the product's knob): one query
    # cannot use a second thread, but waits for it when the core is busy
    warm1 = [run_cli(index_dir, {"COVERSEARCH_THREADS": "1"})[0] for _ in range(args.warm_runs)]
    imports, bare = import_profile(index_dir)
    stages = stage_profile(index_dir)
    proc = {"cold_s": round(cold, 3), "cold_cpu_s": round(cold_cpu, 3),
            "warm_median_s": round(float(np.median(warm)), 3), "warm_cpu_median_s": round(float(np.median(warm_cpu)), 3),
            "warm_max_s": round(max(warm), 3), "warm_1thread_median_s": round(float(np.median(warm1)), 3),
            "warm_runs": len(warm), "files_evicted": n_evicted, "bare_python_s": round(bare, 3)}
    p50 = next(r["p50_ms"] for r in lat if r["level"].startswith("bundle"))
    summary = {"in_process_p50_ms": p50, "target_p50_ms": 1.0, "p50_met": p50 < 1.0,
               "cli_cold_s": proc["cold_s"], "cli_warm_s": proc["warm_median_s"], "target_cli_s": 1.0,
               "cli_met": max(proc["cold_s"], proc["warm_median_s"]) < 1.0}
    print(table(lat, title=f"\nIn-process single-query latency, k=10, {vinfo['vectors']}"))
    print(table(thr, title="\nBatched throughput (FAISS search, k=10)"))
    print(table([proc], title=f"\nWhole process: {' '.join(['coversearch'] + cli_cmd(index_dir)[1:5])}"))
    print(table(imports, title="\nWhere the process time goes (-X importtime, top-level imports)"))
    print(table(stages, title="\nWhere the process time goes after imports (cProfile, cumulative)"))
    print(f"\np50 {p50} ms (target < 1 ms: {'met' if summary['p50_met'] else 'MISSED'}); "
          f"CLI cold {proc['cold_s']} s / warm {proc['warm_median_s']} s "
          f"(target < 1 s: {'met' if summary['cli_met'] else 'MISSED'})")
    write_result("query", {"vectors": vinfo, "latency": lat, "throughput": thr, "process": proc,
                           "import_profile": imports, "stage_profile": stages, "summary": summary},
                 args={k: str(v) for k, v in vars(args).items()}, seconds=time.perf_counter() - t_all)
    return summary


if __name__ == "__main__":
    main()
