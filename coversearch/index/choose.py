"""Choosing a FAISS index: a pure function of (count, dim, memory budget).

No FAISS import here, so the choice is unit-testable at its boundaries and
cheap to call from the CLI.

Rules of ``kind="auto"``:

* ``flat`` (exact inner product) up to ``FLAT_MAX`` = 200,000 vectors: a
  brute-force scan of 200k x 128 floats is ~100 MB and a few ms per query, and
  it is exact -- nothing to tune, recall 1.0.
* ``hnsw`` (graph, inner product) up to ``HNSW_MAX`` = 5,000,000 vectors, if
  raw vectors plus the graph fit the memory budget: best latency/recall
  trade-off when memory allows.
* ``ivfpq`` beyond that, or whenever the budget is too tight for flat/hnsw:
  compressed codes of ``m`` bytes per vector (``nbits`` = 8).

Sizes scale with n: ``nlist ~ 4 * sqrt(n)`` (clamped so k-means sees at least
``MIN_POINTS_PER_CENTROID`` = 39 training points per list, the FAISS warning
threshold), ``nbits`` lowered for small n so the PQ codebooks (2**nbits
centroids) have enough training points, ``nprobe ~ nlist / 16``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

KINDS = ("flat", "hnsw", "ivfpq")
FLAT_MAX = 200_000
HNSW_MAX = 5_000_000
MIN_POINTS_PER_CENTROID = 39
HNSW_M = 32
IVFPQ_MIN = 2 * MIN_POINTS_PER_CENTROID  # below: even 1-bit codebooks are undertrained


@dataclass(frozen=True)
class IndexSpec:
    """Which FAISS index to build and with which parameters.

    Attributes:
        kind: ``flat``, ``hnsw`` or ``ivfpq``.
        params: kind-specific sizes: hnsw ``M``, ``efConstruction``,
            ``efSearch``; ivfpq ``nlist``, ``m``, ``nbits``, ``nprobe``.
        note: why this choice was made (shown in the manifest).
    """

    kind: str
    params: dict = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": dict(self.params), "note": self.note}


def estimate_bytes(kind: str, n: int, dim: int, params: dict | None = None) -> int:
    """Approximate resident size of an index (bytes).

    Args:
        kind: ``flat``, ``hnsw`` or ``ivfpq``.
        n: number of vectors.
        dim: vector dimension.
        params: index parameters (defaults as in :func:`choose_index`).
    """
    params = params or {}
    raw = 4 * n * dim
    if kind == "flat":
        return raw
    if kind == "hnsw":
        # level-0 links are 2*M ints, upper levels add ~1/M of that again
        return raw + int(n * 2 * params.get("M", HNSW_M) * 4 * 1.1)
    if kind == "ivfpq":
        m = params.get("m", _pq_m(dim))
        nlist = params.get("nlist", 1)
        # code + 8-byte id per vector, plus coarse centroids and codebooks
        return n * (m + 8) + 4 * nlist * dim + 4 * dim * 256
    raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")


def _pq_m(dim: int) -> int:
    """Sub-quantizer count (= bytes per code): the largest divisor of dim that
    is <= dim/4 (sub-vectors of >= 4 dims) and <= 64."""
    return max(m for m in range(1, dim + 1) if dim % m == 0 and m <= max(1, dim // 4) and m <= 64)


def _ivfpq_params(n: int, dim: int) -> dict:
    nlist = int(round(4 * math.sqrt(max(n, 1))))
    nlist = max(1, min(nlist, n // MIN_POINTS_PER_CENTROID))
    # 2**nbits codebook entries need ~39 points each as well
    nbits = 8
    while nbits > 1 and n < MIN_POINTS_PER_CENTROID * (1 << nbits):
        nbits -= 1
    # nlist/16 lists scanned keeps recall@10 high on clustered data; at least
    # 8 so small indexes are not starved, at most 256 to bound latency
    nprobe = min(nlist, max(8, nlist // 16), 256)
    return {"nlist": nlist, "m": _pq_m(dim), "nbits": nbits, "nprobe": nprobe}


def _hnsw_params(n: int) -> dict:
    return {"M": HNSW_M, "efConstruction": 200, "efSearch": 128 if n < 1_000_000 else 256}


def choose_index(n: int, dim: int, *, kind: str = "auto", memory_budget_bytes: int | None = None) -> IndexSpec:
    """Pick the index kind and its parameters for ``n`` vectors of ``dim`` floats.

    Args:
        n: number of vectors (>= 1).
        dim: vector dimension (>= 1).
        kind: ``auto`` or an explicit kind (``flat``, ``hnsw``, ``ivfpq``);
            an explicit kind is always honoured, with parameters clamped to n.
        memory_budget_bytes: upper bound on the index size; None = unbounded.

    Returns:
        The frozen :class:`IndexSpec`.

    Raises:
        ValueError: unknown kind, or n / dim < 1.
    """
    if n < 1 or dim < 1:
        raise ValueError(f"need n >= 1 and dim >= 1, got n={n}, dim={dim}")
    if kind not in ("auto",) + KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected auto, flat, hnsw or ivfpq")
    if kind == "flat":
        return IndexSpec("flat", {}, "requested")
    if kind == "hnsw":
        return IndexSpec("hnsw", _hnsw_params(n), "requested")
    if kind == "ivfpq":
        if n < IVFPQ_MIN:
            return IndexSpec("flat", {}, f"ivfpq requested but n={n} < {IVFPQ_MIN} is too few to train it")
        return IndexSpec("ivfpq", _ivfpq_params(n, dim), "requested")

    def fits(k: str, params: dict | None = None) -> bool:
        return memory_budget_bytes is None or estimate_bytes(k, n, dim, params) <= memory_budget_bytes

    if n <= FLAT_MAX and fits("flat"):
        return IndexSpec("flat", {}, f"auto: n={n} <= {FLAT_MAX}, exact search")
    hp = _hnsw_params(n)
    if n <= HNSW_MAX and fits("hnsw", hp):
        return IndexSpec("hnsw", hp, f"auto: n={n} <= {HNSW_MAX} and graph fits memory")
    if n < IVFPQ_MIN:
        return IndexSpec("flat", {}, f"auto: budget too tight, but n={n} is too few for ivfpq")
    ip = _ivfpq_params(n, dim)
    why = f"n={n} > {HNSW_MAX}" if n > HNSW_MAX else "memory budget too tight for flat/hnsw"
    return IndexSpec("ivfpq", ip, f"auto: {why}, compressed codes")
