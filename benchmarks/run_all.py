"""Run every benchmark, one child process each, and record the run's time.

Each script prints its table and writes ``benchmarks/results/<name>.json``;
this runner adds ``results/run_all.json`` (which scripts ran, their exit codes
and wall times). ``--quick`` passes ``--quick`` on (smaller sizes; the whole
run stays under 10 minutes on 2 cores); without it the full figures are
measured (see README for the full run's time). ``bench_alignment.py`` is run
too when it exists.

Usage::

    python benchmarks/run_all.py [--quick] [--only ingest,query]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, REPO, table, write_result  # noqa: E402

# ingest first: embed reuses its generated files
ORDER = ("ingest", "embed", "query", "eval", "scale", "alignment")
QUICK_ALIGN_ITEMS = 150


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes; under 10 minutes")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(ORDER))
    args = ap.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    rows = []
    t_all = time.perf_counter()
    for name in ORDER:
        script = BENCH_DIR / f"bench_{name}.py"
        if (only and name not in only) or not script.is_file():
            continue
        cmd = [sys.executable, str(script)]
        text = script.read_text()
        if args.quick and "--quick" in text:
            cmd.append("--quick")
        elif args.quick and name == "alignment" and "--items" in text:
            cmd += ["--items", str(QUICK_ALIGN_ITEMS)]  # it has no --quick: a smaller all-pairs subset
        print(f"\n######## {' '.join([script.name] + cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        env = dict(os.environ, COVERSEARCH_BENCH_QUICK="1" if args.quick else "0")
        rc = subprocess.call(cmd, cwd=REPO, env=env)
        rows.append({"benchmark": name, "exit": rc, "seconds": round(time.perf_counter() - t0, 1)})
    total = time.perf_counter() - t_all
    print(table(rows, title=f"\nrun_all{' --quick' if args.quick else ''}: {total / 60:.1f} min"))
    write_result("run_all", {"runs": rows},
                 args={"quick": args.quick, "only": only}, seconds=total)
    return 0 if all(r["exit"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
