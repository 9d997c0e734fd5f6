"""The prepared cache: every performance's chroma at the model rate, in one
memory-mappable Arrow IPC file.

Reading 15,000 real gzip'd h5 files is the slow part of indexing, so it is done
once, in parallel, and kept. Each row records the source file's size and
mtime; a rebuild re-reads only files that changed (or are new) and reuses the
rest, and a file that vanished drops out. Columns::

    perf_id, work_id, subset, path : string
    size, mtime_ns, n_nonfinite    : int64
    frames                         : large_list<float32>  (T * 12 values, row-major (T, 12))

Schema metadata holds the feature, the prepared hop and a format version.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from coversearch._io import atomic_path
from coversearch.config import PREPARED_HOP
from coversearch.data.layout import PerfEntry, find_performances
from coversearch.errors import DataError

FORMAT_VERSION = "1"
_SCHEMA = pa.schema(
    [
        ("perf_id", pa.string()),
        ("work_id", pa.string()),
        ("subset", pa.string()),
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("n_nonfinite", pa.int64()),
        ("frames", pa.large_list(pa.float32())),
    ]
)


class PreparedCache:
    """Read-only, memory-mapped view of a prepared cache file.

    Attributes:
        path: the ``.arrow`` file.
        feature: the chroma feature it holds.
        hop: the prepared hop (samples at 44.1 kHz).
        perf_ids, work_ids, subsets, paths: per-row lists.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"prepared cache not found: {self.path}")
        try:
            reader = pa.ipc.open_file(pa.memory_map(str(self.path), "r"))
            self.table = reader.read_all()
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{self.path}: corrupt prepared cache ({e}); delete it to rebuild") from None
        meta = {k.decode(): v.decode() for k, v in (self.table.schema.metadata or {}).items()}
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{self.path}: prepared cache of another format version; delete it to rebuild")
        self.feature = meta.get("feature", "")
        self.hop = int(meta.get("hop", PREPARED_HOP))
        self.perf_ids = self.table.column("perf_id").to_pylist()
        self.work_ids = self.table.column("work_id").to_pylist()
        self.subsets = self.table.column("subset").to_pylist()
        self.paths = self.table.column("path").to_pylist()
        self._row = {p: i for i, p in enumerate(self.perf_ids)}
        self._spans: list[tuple[np.ndarray, int, int]] = []
        for chunk in self.table.column("frames").chunks:
            offs = chunk.offsets.to_numpy()
            values = chunk.values.to_numpy(zero_copy_only=True)
            for j in range(len(chunk)):
                self._spans.append((values, int(offs[j]), int(offs[j + 1])))

    def __len__(self) -> int:
        return len(self.perf_ids)

    def row_of(self, perf_id: str) -> int:
        """Row of a performance id (KeyError if absent)."""
        return self._row[perf_id]

    def sequence(self, key: int | str) -> np.ndarray:
        """(T, 12) float32 read-only view of one row (by row or perf id)."""
        i = self._row[key] if isinstance(key, str) else int(key)
        values, a, b = self._spans[i]
        return values[a:b].reshape(-1, 12)

    def sequences(self) -> list[np.ndarray]:
        """Every row's (T, 12) sequence, in row order (views, no copy)."""
        return [self.sequence(i) for i in range(len(self))]

    def lengths(self) -> np.ndarray:
        """(N,) int64 frame counts."""
        return np.array([(b - a) // 12 for _, a, b in self._spans], dtype=np.int64)


@dataclass
class CacheReport:
    """What a cache build did."""

    path: Path
    n_items: int = 0
    n_read: int = 0
    n_reused: int = 0
    n_nonfinite: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def log_read_report(bad: list[tuple[str, str]], n_nonfinite: int, log=print) -> None:
    """Tell the user which files were skipped (one line each) and how many NaN/inf
    values were replaced; shared by every path that reads a data root."""
    if bad:
        log(f"skipped {len(bad)} unreadable file(s):")
        for _, msg in bad:
            log(f"  {msg}")
    if n_nonfinite:
        log(f"note: replaced {n_nonfinite} NaN/inf values by 0")


def default_cache_path(root: str | Path, feature: str, subset: str | None = None) -> Path:
    """``ROOT/.coversearch-cache/prepared-<feature>-<subset|all>.arrow``, or a
    per-user cache folder when the data root is not writable."""
    root = Path(root).resolve()
    name = f"prepared-{feature}-{subset or 'all'}-h{PREPARED_HOP}.arrow"
    if os.access(root, os.W_OK):
        return root / ".coversearch-cache" / name
    import hashlib

    tag = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "coversearch" / tag / name


def _read_one(args):
    """Worker: read and prepare one file. Returns (idx, frames|None, n_nonfinite, error|None)."""
    idx, path, feature = args
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare

    try:
        c = load_chroma(path, feature)
        return idx, prepare(c.frames, c.hop), c.n_nonfinite, None
    except DataError as e:
        return idx, None, 0, str(e)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def build_cache(
    root: str | Path,
    feature: str = "hpcp",
    *,
    subset: str | None = None,
    cache_path: str | Path | None = None,
    jobs: int = 2,
    skip_bad: bool = False,
    progress: bool = True,
) -> tuple[PreparedCache, CacheReport]:
    """Build (or refresh) the prepared cache of every performance under ``root``.

    Unchanged files (same size and mtime) are reused from the existing cache;
    changed or new ones are read in ``jobs`` processes. The file is written to a
    temporary name and renamed, so an interrupted build keeps the old cache.

    Args:
        root: Da-TACOS data root.
        feature: ``hpcp``, ``crema`` or ``cens``.
        subset: restrict to one subset.
        cache_path: where to write; default ``default_cache_path(root, ...)``.
        jobs: reader processes (1 = in this process).
        skip_bad: skip unreadable files (listed in the report) instead of failing.
        progress: show a tqdm bar.

    Returns:
        (cache, report).

    Raises:
        DataError: a bad file (the first one, by name) when not ``skip_bad``;
            nothing readable at all.
    """
    t0 = time.perf_counter()
    entries: list[PerfEntry] = find_performances(root, feature, subset)
    path = Path(cache_path) if cache_path else default_cache_path(root, feature, subset)
    report = CacheReport(path=path)
    old = None
    if path.exists():
        try:
            old = PreparedCache(path)
            if old.feature != feature or old.hop != PREPARED_HOP:
                old = None
        except DataError:
            old = None
    stats = [_stat(e.path) for e in entries]
    results: dict[int, tuple[np.ndarray, int]] = {}
    todo = []
    old_index = {}
    if old is not None:
        sizes = old.table.column("size").to_pylist()
        mtimes = old.table.column("mtime_ns").to_pylist()
        nnf = old.table.column("n_nonfinite").to_pylist()
        old_index = {p: (sizes[i], mtimes[i], nnf[i], i) for i, p in enumerate(old.paths)}
    for i, e in enumerate(entries):
        hit = old_index.get(str(e.path))
        if hit and hit[:2] == stats[i]:
            results[i] = (old.sequence(hit[3]), hit[2])
        else:
            todo.append((i, str(e.path), feature))
    report.n_reused = len(results)
    if not todo and old is not None and len(results) == len(old):
        report.n_items = len(old)
        report.seconds = time.perf_counter() - t0
        return old, report

    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc=f"preparing {feature}", unit="file", disable=not progress or not todo)
    bad: dict[int, str] = {}

    def collect(out):
        idx, frames, n_nf, err = out
        if err is not None:
            if not skip_bad:
                raise DataError(f"{err} (use --skip-bad to skip unreadable files)")
            bad[idx] = err
        else:
            results[idx] = (frames, n_nf)
        bar.update(1)

    try:
        if jobs <= 1 or len(todo) < 8:
            for t in todo:
                collect(_read_one(t))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(jobs) as pool:
                for out in pool.imap_unordered(_read_one, todo, chunksize=4):
                    collect(out)
    finally:
        bar.close()
    report.n_read = len(todo) - len(bad)
    report.bad = [(str(entries[i].path), msg) for i, msg in sorted(bad.items())]
    keep = [i for i in range(len(entries)) if i in results]
    if not keep:
        raise DataError(f"no readable performance under {root}")
    report.n_nonfinite = int(sum(results[i][1] for i in keep))
    _write(path, feature, entries, stats, results, keep)
    report.n_items = len(keep)
    report.seconds = time.perf_counter() - t0
    return PreparedCache(path), report


def _write(path: Path, feature: str, entries, stats, results, keep, batch: int = 512) -> None:
    schema = _SCHEMA.with_metadata({"format_version": FORMAT_VERSION, "feature": feature, "hop": str(PREPARED_HOP)})
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for s in range(0, len(keep), batch):
                rows = keep[s : s + batch]
                flat = [np.ascontiguousarray(results[i][0], np.float32).reshape(-1) for i in rows]
                lens = np.array([0] + [len(f) for f in flat], dtype=np.int64)
                frames = pa.LargeListArray.from_arrays(pa.array(np.cumsum(lens)), pa.array(np.concatenate(flat)))
                cols = [
                    pa.array([entries[i].perf_id for i in rows]),
                    pa.array([entries[i].work_id for i in rows]),
                    pa.array([entries[i].subset for i in rows]),
                    pa.array([str(entries[i].path) for i in rows]),
                    pa.array([stats[i][0] for i in rows], pa.int64()),
                    pa.array([stats[i][1] for i in rows], pa.int64()),
                    pa.array([results[i][1] for i in rows], pa.int64()),
                    frames,
                ]
                writer.write_batch(pa.record_batch(cols, schema=schema))
