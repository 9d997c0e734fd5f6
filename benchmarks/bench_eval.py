"""Evaluation: time and peak memory of the all-against-all evaluation
(``retrieval_metrics``: MAP, MR1, P@10 over every query) on 15,000 vectors,
by block size.

Each configuration runs in a fresh child process so its peak resident memory
(``ru_maxrss``) is its own; the child also reports its resident size just
before the evaluation (interpreter + numpy + the vectors), so the evaluation's
own share is the difference.

Vectors: an index folder's if given (``--index-dir``), else 15,000 synthetic
clustered unit vectors with the Da-TACOS benchmark's structure (1,000 works x
13 + 2,000 singletons, D=128, MAP ~0.60; ``_common.ClusteredStream``). The cost depends only on N, D and the block,
not on the values.

Usage::

    python benchmarks/bench_eval.py [--quick] [--n 15000] [--index-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, table, write_result  # noqa: E402

_CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
from _common import clustered_unit_vectors, current_rss_bytes, peak_rss_bytes
from coversearch.evaluate.retrieval import retrieval_metrics
n, block, index_dir = {n}, {block}, {index_dir!r}
if index_dir:
    from coversearch.index.bundle import load_bundle
    b = load_bundle(index_dir, load_index=False)
    x = np.ascontiguousarray(b.vectors, dtype=np.float32)
    y = np.array(b.items.column("work_id").to_pylist())
else:
    x, y = clustered_unit_vectors(n, 128, seed=0)
before = current_rss_bytes()
t0 = time.perf_counter()
m = retrieval_metrics(x, y, k=10, block=block)
s = time.perf_counter() - t0
print(json.dumps({{"seconds": s, "rss_before": before, "peak_rss": peak_rss_bytes(),
                  "map": m["map"], "mr1": m["mr1"], "p_at_10": m["p_at_10"], "n": len(y)}}))
"""


def run_child(n: int, block: int, index_dir: str | None) -> dict:
    """One evaluation in a fresh process; its time and memory."""
    code = _CHILD.format(bench=str(Path(__file__).resolve().parent), n=n, block=block, index_dir=index_dir or "")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"evaluation child failed: {p.stderr.strip()[-400:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return {
        "n": r["n"],
        "block": block,
        "seconds": round(r["seconds"], 2),
        "peak_rss_MB": round(r["peak_rss"] / 1e6, 1),
        "eval_extra_MB": round((r["peak_rss"] - r["rss_before"]) / 1e6, 1),
        "map": round(r["map"], 4),
        "mr1": round(r["mr1"], 1),
        "p_at_10": round(r["p_at_10"], 4),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=15_000)
    ap.add_argument("--blocks", default="256,1024,4096")
    ap.add_argument("--index-dir", default=None, help="evaluate this index folder's vectors instead")
    ap.add_argument("--quick", action="store_true", help="the default block (1024) only")
    args = ap.parse_args(argv)
    blocks = [1024] if args.quick else [int(b) for b in args.blocks.split(",")]
    t_all = time.perf_counter()
    rows = []
    for b in blocks:
        rows.append(run_child(args.n, b, args.index_dir))
        print(f"  block={b}: {rows[-1]['seconds']} s, peak {rows[-1]['peak_rss_MB']} MB", flush=True)
    default = next((r for r in rows if r["block"] == 1024), rows[0])
    summary = {"n": default["n"], "seconds": default["seconds"], "peak_rss_MB": default["peak_rss_MB"],
               "target_s": 10, "target_MB": 2000,
               "target_met": default["seconds"] < 10 and default["peak_rss_MB"] < 2000}
    vec = args.index_dir or "synthetic clustered (1,000 works x 13 + 2,000 singletons, D=128)"
    print(table(rows, title=f"\nAll-against-all evaluation, {vec}"))
    print(f"\nblock 1024 (the default): {default['seconds']} s, peak {default['peak_rss_MB']} MB "
          f"(targets < 10 s and < 2 GB: {'met' if summary['target_met'] else 'MISSED'})")
    write_result("eval", {"vectors": vec, "rows": rows, "summary": summary},
                 args=vars(args), seconds=time.perf_counter() - t_all)
    return summary


if __name__ == "__main__":
    main()
