#!/usr/bin/env python
"""Evaluation catalogues for the adaptation study, as folders of symlinks
(no h5 file is copied).

    # the works a still-running generator has finished (its newest --skip-newest
    # work folders may be half-written and are left out)
    python scripts/adapt_catalogues.py snapshot data/benchmark-standard-s2026-h4096-n600 data/adapt-standard-s2026-snap
    # every third work of a finished set: ~1,000 performances, same structure
    python scripts/adapt_catalogues.py snapshot data/benchmark-wide-s2026-h4096-n600 data/adapt-wide-s2026-third --every 3

    # a catalogue mixing two kinds of music without id collisions: the
    # performances of half the works (every other work id, sorted) from A,
    # of the other half from B; only works present in both; kinds.json
    # records each performance's kind (for per-kind reports only)
    python scripts/adapt_catalogues.py mixed data/...standard... data/...wide... data/adapt-mixed-s2026

Both sources must use the per-feature layout (``da-tacos_benchmark_subset_hpcp/W_x_hpcp/P_y_hpcp.h5``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

FEAT = "da-tacos_benchmark_subset_hpcp"


def work_dirs(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((root / FEAT).iterdir()) if p.is_dir()}


def complete(root: Path, skip_newest: int) -> dict[str, Path]:
    dirs = work_dirs(root)
    if (root / ".coversearch-synth.json").is_file():
        return dirs
    newest = sorted(dirs.values(), key=lambda p: max([f.stat().st_mtime for f in p.iterdir()] or [p.stat().st_mtime]))
    drop = {p.name for p in newest[-skip_newest:]} if skip_newest else set()
    return {k: v for k, v in dirs.items() if k not in drop}


def fresh(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    (out / FEAT).mkdir(parents=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snapshot")
    s.add_argument("src", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--skip-newest", type=int, default=4)
    s.add_argument("--every", type=int, default=1,
                   help="keep every N-th work (sorted by numeric id): a smaller catalogue of the same structure")
    s.add_argument("--offset", type=int, default=0, help="which of the N interleaved subsets")
    m = sub.add_parser("mixed")
    m.add_argument("a", type=Path)
    m.add_argument("b", type=Path)
    m.add_argument("out", type=Path)
    m.add_argument("--skip-newest", type=int, default=4)
    args = ap.parse_args()
    if args.cmd == "snapshot":
        dirs = complete(args.src, args.skip_newest)
        ids = sorted(dirs, key=lambda w: int(w.split("_")[1]))
        dirs = {w: dirs[w] for i, w in enumerate(ids) if i % args.every == args.offset}
        out = fresh(args.out)
        for name, p in dirs.items():
            os.symlink(p.resolve(), out / FEAT / name)
        n = sum(len(list(p.iterdir())) for p in dirs.values())
        print(f"{out}: {len(dirs)} works, {n} performances from {args.src}")
        return
    da, db = complete(args.a, args.skip_newest), complete(args.b, args.skip_newest)
    common = sorted(set(da) & set(db), key=lambda w: int(w.split("_")[1]))
    out = fresh(args.out)
    kinds = {}
    for i, w in enumerate(common):
        src, kind = (da[w], args.a.name) if i % 2 == 0 else (db[w], args.b.name)
        os.symlink(src.resolve(), out / FEAT / w)
        for f in src.iterdir():
            kinds[f.name.split("_hpcp")[0]] = kind
    (out / "kinds.json").write_text(json.dumps(kinds, indent=0, sort_keys=True) + "\n")
    print(f"{out}: {len(common)} works, {len(kinds)} performances "
          + ", ".join(f"{k} {list(kinds.values()).count(k)}" for k in sorted(set(kinds.values()))))


if __name__ == "__main__":
    main()
