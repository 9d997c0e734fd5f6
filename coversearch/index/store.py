"""FAISS index files: build, save (atomically), load, search.

Metric: every index ranks by cosine similarity of unit vectors.

* ``flat`` and ``hnsw`` use ``METRIC_INNER_PRODUCT``; returned scores are
  cosines.
* ``ivfpq`` uses L2 (the metric IVF-PQ is built and tuned for): on unit
  vectors ``||a - b||^2 = 2 - 2 cos``, so the L2 order is the cosine order, and
  :func:`search` converts the returned squared distances back to (approximate)
  cosines ``1 - d / 2`` so every kind returns the same kind of score.

FAISS row ids are the rows of the vectors as added (0..N-1): the items table
row i describes FAISS id i.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coversearch._io import atomic_path
from coversearch.errors import ConfigError, IndexMismatchError
from coversearch.index.choose import IndexSpec

# Training k-means on more than this many points buys nothing measurable.
MAX_TRAIN = 100_000
TRAIN_SEED = 0


_CPUS = os.cpu_count() or 1  # once: it reads /sys on every call (0.03 ms, a tenth of a search)


def _faiss():
    """Import faiss with a bounded thread count.

    FAISS's OpenMP pool defaults to every core; on a shared machine a query
    must not grab them all. ``COVERSEARCH_THREADS`` overrides (default: up to 4).
    """
    import faiss

    want = int(os.environ.get("COVERSEARCH_THREADS", "0") or 0) or min(4, _CPUS)
    if faiss.omp_get_max_threads() != want:
        faiss.omp_set_num_threads(want)
    return faiss


def _as_matrix(x: np.ndarray, name: str = "vectors") -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {x.shape}")
    return x


def build_faiss(vectors: np.ndarray, spec: IndexSpec):
    """Build and fill an index of the given spec.

    Args:
        vectors: (N, D) float32 L2-normalised rows; row i gets FAISS id i.
        spec: from :func:`coversearch.index.choose.choose_index`.

    Returns:
        a ``faiss.Index`` with ``ntotal == N`` and search parameters set.
    """
    faiss = _faiss()
    x = _as_matrix(vectors)
    n, d = x.shape
    p = spec.params
    if spec.kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(p.get("M", 32)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(p.get("efConstruction", 200))
    elif spec.kind == "ivfpq":
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFPQ(quantizer, d, int(p["nlist"]), int(p["m"]), int(p["nbits"]))
        train = x
        if n > MAX_TRAIN:
            rows = np.random.default_rng(TRAIN_SEED).choice(n, MAX_TRAIN, replace=False)
            train = x[np.sort(rows)]
        index.train(train)
    else:
        raise ValueError(f"unknown index kind {spec.kind!r}")
    index.add(x)
    configure(index, spec)
    return index


def configure(index, spec: IndexSpec) -> None:
    """Set query-time parameters (nprobe, efSearch) of ``index`` from ``spec``."""
    faiss = _faiss()
    p = spec.params
    if spec.kind == "hnsw" and "efSearch" in p:
        faiss.downcast_index(index).hnsw.efSearch = int(p["efSearch"])
    elif spec.kind == "ivfpq" and "nprobe" in p:
        faiss.extract_index_ivf(index).nprobe = int(p["nprobe"])


def save_faiss(index, path: str | os.PathLike) -> None:
    """Write ``index`` to ``path`` atomically (temp file + rename)."""
    faiss = _faiss()
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def load_faiss(path: str | os.PathLike, spec: IndexSpec | None = None):
    """Read an index file; set its query parameters from ``spec`` if given.

    Raises:
        IndexMismatchError: missing or unreadable file.
    """
    faiss = _faiss()
    path = Path(path)
    if not path.is_file():
        raise IndexMismatchError(f"missing FAISS index file {path}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise IndexMismatchError(f"cannot read FAISS index {path}: {first}") from None
    if spec is not None:
        configure(index, spec)
    return index


def is_l2(index) -> bool:
    """True if ``index`` ranks by L2 distance (our ivfpq) rather than inner product."""
    faiss = _faiss()
    return index.metric_type == faiss.METRIC_L2


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest rows by cosine.

    Args:
        index: a ``faiss.Index`` built by :func:`build_faiss`.
        queries: (Q, D) float32 unit vectors.
        k: neighbours per query (clamped to ``index.ntotal``).

    Returns:
        scores (Q, k) float32 cosines, descending; ids (Q, k) int64 rows,
        -1 where fewer than k results exist.
    """
    q = _as_matrix(queries, "queries")
    if q.shape[1] != index.d:
        raise IndexMismatchError(f"query dim {q.shape[1]} != index dim {index.d}")
    k = max(1, min(int(k), int(index.ntotal)))
    faiss = _faiss()
    l2 = index.metric_type == faiss.METRIC_L2
    if q.shape[0] < 16:
        # one query cannot use a second OpenMP thread, but waits for it when
        # that core is busy (p50 0.11 ms on 1 thread vs 6.8 ms at load 2)
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            dist, ids = index.search(q, k)
        finally:
            faiss.omp_set_num_threads(before)
    else:
        dist, ids = index.search(q, k)
    if l2:
        dist = 1.0 - dist / 2.0
    return dist.astype(np.float32), ids.astype(np.int64)


# --- the store interface ---------------------------------------------------
# An index folder's vectors live in a *store* that answers "the k nearest rows
# to these unit vectors" and "the vector of row r". Two implementations:
# FaissStore (index.faiss in the folder, the default) and MilvusStore
# (coversearch.index.milvus_store: a collection in Milvus / Milvus Lite, named
# in the manifest). Bundle.search and api.query/evaluate only use this
# interface, so they do not care which store holds the vectors.

STORE_KINDS = ("faiss", "milvus")


@dataclass(frozen=True)
class StoreConfig:
    """Where a new index's vectors are searched.

    Attributes:
        kind: ``faiss`` (``index.faiss`` in the folder) or ``milvus``.
        uri: Milvus server URI (``http://host:19530``) or Milvus Lite path ``FILE.db``.
        collection: Milvus collection base name (default ``coversearch_<index folder name>``);
            each build writes ``<base>_<stamp>``.
    """

    kind: str = "faiss"
    uri: str = ""
    collection: str = ""

    def __post_init__(self):
        if self.kind not in STORE_KINDS:
            raise ConfigError(f"unknown store {self.kind!r}; choose one of {', '.join(STORE_KINDS)}")
        if self.kind == "milvus" and not self.uri:
            raise ConfigError("--store milvus needs --milvus-uri (a server like http://host:19530, or a local FILE.db)")
        if self.kind == "faiss" and (self.uri or self.collection):
            raise ConfigError("--milvus-uri/--milvus-collection need --store milvus")


class FaissStore:
    """The FAISS file of an index folder behind the store interface.

    Attributes:
        kind: ``"faiss"``.
        index: the ``faiss.Index``.
    """

    kind = "faiss"

    def __init__(self, index):
        self.index = index

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) float32 unit vectors -> scores (Q, k) cosines descending, rows (Q, k) int64 (-1 = none)."""
        return search(self.index, queries, k)

    def describe(self) -> dict:
        return {"kind": self.kind}
