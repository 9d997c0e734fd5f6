"""Shared helpers of the benchmark scripts: machine info, timing, tables, JSON.

Every script prints a plain-text table and writes ``benchmarks/results/<name>.json``
holding the machine it ran on, the date, the arguments and the rows, so a
figure in the README can always be traced to one file and one command.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DATA = REPO / "data"  # gitignored: generated inputs live here

if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from a checkout
    sys.path.insert(0, str(REPO))


def machine() -> dict:
    """CPU model, cores, RAM, load and library versions of this machine."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("torch", "faiss", "pyarrow", "h5py"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:
                continue
        versions[mod] = getattr(m, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        # other jobs share the machine: the load at start explains noisy figures
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


class Timer:
    """``with Timer() as t: ...; t.s`` -- wall seconds of a block."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0
        return False


def route_settings(pairs, configs) -> list[dict]:
    """``key=value`` strings -> one dict of overrides per dataclass in ``configs``
    (a key goes to the first one with that field; an unknown key is SystemExit).
    A value is JSON where it parses (numbers, lists, true/false), else the raw
    string; lists become tuples (the configs' range fields)."""
    from dataclasses import fields

    names = [{f.name for f in fields(c)} for c in configs]
    out = [{} for _ in configs]
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        value = tuple(value) if isinstance(value, list) else value
        i = next((j for j, n in enumerate(names) if key in n), None)
        if i is None:
            raise SystemExit(f"unknown setting {key!r} (a field of {', '.join(c.__name__ for c in configs)})")
        out[i][key] = value
    return out


def percentiles_ms(samples_s, qs=(50, 90, 99)) -> dict:
    """Percentiles (ms) of a list of durations in seconds."""
    a = np.asarray(samples_s, np.float64) * 1e3
    return {f"p{q}_ms": round(float(np.percentile(a, q)), 4) for q in qs}


def dir_bytes(path: str | Path) -> int:
    """Total size of the regular files under ``path`` (or of the file itself)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def table(rows: list[dict], cols: list[str] | None = None, title: str = "") -> str:
    """Render rows as an aligned plain-text table (also valid Markdown)."""
    if not rows:
        return f"{title}\n(no rows)"
    cols = cols or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    w = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "| " + " | ".join(v.rjust(w[i]) for i, v in enumerate(vals)) + " |"  # noqa: E731
    out = [title] if title else []
    out += [line(cols), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def write_result(name: str, payload: dict, *, args: dict | None = None, seconds: float | None = None) -> Path:
    """Write ``results/<name>.json`` with the machine, date and arguments added.

    A ``--quick`` run (or any run under ``run_all.py --quick``, which sets
    ``COVERSEARCH_BENCH_QUICK=1``) writes ``results/<name>.quick.json``
    instead, so it never overwrites the full figures the README quotes.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "--quick" in sys.argv[1:] or os.environ.get("COVERSEARCH_BENCH_QUICK") == "1":
        name += ".quick"
    doc = {
        "benchmark": name,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "args": args or {},
        "machine": machine(),
        "wall_seconds": None if seconds is None else round(seconds, 2),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(REPO)}")
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ClusteredStream:
    """Synthetic embeddings with the cluster structure of real ones, made chunk
    by chunk (deterministically) so 10M x 128 never needs a second copy.

    Versions lie near their work: each work gets a random unit centre and each
    version is ``centre + spread * noise / sqrt(dim)``, renormalised. Centres
    and noise share an anisotropic spectrum (per-direction variance ~ 1/i along
    a random basis; participation ratio ~24 of 128 dims), because learned
    embeddings concentrate their variance in far fewer directions than D --
    and that is what ANN indexes exploit. ``spectrum=0`` gives isotropic
    vectors, the worst case for ANN (measured: IVF-PQ recall@10 < 0.5 at
    100k). The default spread 0.93 was calibrated so that the all-against-all
    MAP at 15,000 is ~0.60, about what a good cover-song encoder reaches on
    Da-TACOS (isotropic: spread 1.5 for the same MAP). The mix is the Da-TACOS
    benchmark's: 13 versions per work for 13/15 of the rows, the rest
    singletons.

    Args:
        n: number of vectors.
        dim: dimension.
        per_work: versions per multi-version work.
        singleton_share: share of rows that are a work's only version.
        spread: noise scale around a work centre.
        seed: RNG seed.
        spectrum: power-law exponent of the per-direction variance (0 = isotropic).
    """

    STEP = 1 << 20

    def __init__(self, n: int, dim: int = 128, *, per_work: int = 13, singleton_share: float = 2 / 15,
                 spread: float = 0.93, seed: int = 0, spectrum: float = 1.0):
        self.n, self.dim, self.spread, self.seed = n, dim, spread, seed
        # anisotropy: per-direction std ~ i**(-spectrum/2) along a random basis
        # (0 = isotropic); learned embeddings concentrate their variance in
        # fewer directions than D, which is what ANN indexes exploit
        rng0 = np.random.default_rng([seed, 3])
        q, _ = np.linalg.qr(rng0.standard_normal((dim, dim)))
        scale = np.arange(1, dim + 1, dtype=np.float64) ** (-spectrum / 2)
        scale *= np.sqrt(dim / np.sum(scale**2))  # same total variance as isotropic
        self.mix = (scale[:, None] * q.T).astype(np.float32)  # (D, D): z @ mix
        n_single = int(round(n * singleton_share))
        self.n_multi_works = (n - n_single) // per_work
        n_single = n - self.n_multi_works * per_work
        self.labels = np.concatenate(
            [np.repeat(np.arange(self.n_multi_works), per_work), self.n_multi_works + np.arange(n_single)]
        ).astype(np.int64)
        rng = np.random.default_rng([seed, 0])
        self.centres = rng.standard_normal((self.n_multi_works + n_single, dim), dtype=np.float32) @ self.mix
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)

    def _versions(self, lab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = self.centres[lab] + (self.spread / np.sqrt(self.dim)) * (
            rng.standard_normal((len(lab), self.dim), dtype=np.float32) @ self.mix)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunk(self, lo: int) -> np.ndarray:
        """Rows ``lo : lo + STEP`` (lo a multiple of STEP), (<= STEP, dim) float32."""
        rng = np.random.default_rng([self.seed, 1, lo])
        return self._versions(self.labels[lo : lo + self.STEP], rng)

    def all(self) -> np.ndarray:
        """Every row, (n, dim) float32 unit vectors."""
        out = np.empty((self.n, self.dim), np.float32)
        for lo in range(0, self.n, self.STEP):
            out[lo : lo + self.STEP] = self.chunk(lo)
        return out

    def queries(self, nq: int) -> tuple[np.ndarray, np.ndarray]:
        """``nq`` new (held-out) versions of random multi-version works:
        (nq, dim) float32 vectors and (nq,) int64 work labels."""
        rng = np.random.default_rng([self.seed, 2])
        lab = rng.integers(0, max(self.n_multi_works, 1), nq).astype(np.int64)
        return self._versions(lab, rng), lab


def clustered_unit_vectors(n: int, dim: int = 128, *, seed: int = 0, **kw):
    """(vectors (n, dim) float32, labels (n,) int64) of :class:`ClusteredStream`."""
    s = ClusteredStream(n, dim, seed=seed, **kw)
    return s.all(), s.labels
