"""The Milvus store: an index folder's vectors in a Milvus collection.

Optional (``pip install coversearch[scale]``): ``pymilvus`` talks to a Milvus
server (``--milvus-uri http://host:19530``) or, for a local path ending in
``.db``, to Milvus Lite (an embedded Milvus in a local folder; tests and small
catalogues).

One collection per index build::

    row      INT64 primary key  = the items-table row (the FAISS id of the local path)
    perf_id  VARCHAR            performance id
    work_id  VARCHAR            work id
    meta     JSON               titles, artists, year, instrumental, subset
    vector   FLOAT_VECTOR(D)    the unit vector, metric IP (= cosine)

The collection property ``coversearch.record`` (and its description) is a JSON record ``{"coversearch": 1, "model_hash",
"dim", "count", "feature"}``; :meth:`MilvusStore.check` compares it (and the
vector field's dimension and the entity count) with the index manifest and
the query model, and fails with one line on any mismatch.

The vector index follows :func:`coversearch.index.choose.choose_index`:
``flat`` -> FLAT, ``hnsw`` -> HNSW (M, efConstruction; ef at search),
``ivfpq`` -> IVF_PQ (nlist, m, nbits; nprobe) on a server. Milvus Lite has no
IVF_PQ, so there ``ivfpq`` becomes IVF_SQ8 (same nlist/nprobe, 1 byte per
dimension); the manifest records what was built.

Rows are written in batches of ``INSERT_BATCH``. Each build writes a new
collection (``<base>_<stamp>``); the index folder's manifest names the one
that is live, so an interrupted build leaves the old folder and its old
collection answering (:func:`coversearch.index.bundle.write_bundle` drops the
new collection on failure and the old one after the swap).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from coversearch.errors import ConfigError, IndexMismatchError
from coversearch.index.choose import IndexSpec

INSERT_BATCH = 2000
FETCH_BATCH = 4000
MAX_VARCHAR = 512
META_FIELDS = ("work_title", "work_artist", "perf_title", "perf_artist", "release_year", "instrumental", "subset")
DESCRIPTION_VERSION = 1
RECORD_PROPERTY = "coversearch.record"
_NAME_OK = re.compile(r"[^A-Za-z0-9_]")
_CLIENTS: dict[str, object] = {}


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise ConfigError("--store milvus needs pymilvus: pip install 'coversearch[scale]'") from None
    return pymilvus


def is_lite(uri: str) -> bool:
    """A Milvus Lite URI is a local path ending in ``.db`` (no scheme)."""
    return "://" not in uri and uri.endswith(".db")


def normalise_uri(uri: str) -> str:
    """Absolute path for Milvus Lite (so a manifest works from any directory); server URIs as given."""
    if not uri:
        raise ConfigError("--store milvus needs --milvus-uri (a server like http://host:19530, or a local FILE.db)")
    if is_lite(uri):
        return str(Path(uri).expanduser().resolve())
    if "://" not in uri:
        raise ConfigError(f"--milvus-uri {uri!r}: give a server URI (http://host:19530) or a local path ending in .db")
    return uri


def client(uri: str, token: str = ""):
    """A (cached, per process) MilvusClient for ``uri``.

    Raises:
        ConfigError: pymilvus missing, or Milvus unreachable at ``uri``.
    """
    uri = normalise_uri(uri)
    key = f"{uri}|{token}"
    if key not in _CLIENTS:
        pm = _pymilvus()
        if is_lite(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            _CLIENTS[key] = pm.MilvusClient(uri=uri, token=token) if token else pm.MilvusClient(uri=uri)
        except Exception as e:  # pymilvus raises MilvusException, grpc errors, OSError...
            raise ConfigError(f"cannot reach Milvus at {uri}: {_first_line(e)}") from None
    return _CLIENTS[key]


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0][:200] if s else type(e).__name__


def collection_base(index_dir) -> str:
    """Default collection base name for an index folder: ``coversearch_<folder name>``."""
    name = _NAME_OK.sub("_", Path(index_dir).resolve().name)[:60] or "index"
    return f"coversearch_{name}"


def check_base(base: str) -> str:
    """Validate a user-given collection base name (Milvus: letters, digits, underscore; not a digit first)."""
    if not base or _NAME_OK.search(base) or base[0].isdigit() or len(base) > 200:
        raise ConfigError(f"--milvus-collection {base!r}: use letters, digits and underscores, not starting with a digit")
    return base


def milvus_index(spec: IndexSpec, uri: str) -> tuple[str, dict, dict]:
    """(index_type, build params, search params) for an :class:`IndexSpec`."""
    p = spec.params
    if spec.kind == "flat":
        return "FLAT", {}, {}
    if spec.kind == "hnsw":
        return ("HNSW", {"M": int(p.get("M", 32)), "efConstruction": int(p.get("efConstruction", 200))},
                {"ef": int(p.get("efSearch", 128))})
    if spec.kind == "ivfpq":
        search = {"nprobe": int(p.get("nprobe", 8))}
        if is_lite(uri):  # Milvus Lite builds no IVF_PQ
            return "IVF_SQ8", {"nlist": int(p["nlist"])}, search
        return "IVF_PQ", {"nlist": int(p["nlist"]), "m": int(p["m"]), "nbits": int(p["nbits"])}, search
    raise ValueError(f"unknown index kind {spec.kind!r}")


def _meta(columns: dict, i: int) -> dict:
    out = {}
    for f in META_FIELDS:
        if f in columns:
            v = columns[f][i]
            out[f] = v if isinstance(v, (int, float, bool, str)) or v is None else str(v)
    return out


class MilvusStore:
    """A Milvus collection behind the store interface (see :class:`coversearch.index.store.FaissStore`).

    Attributes:
        kind: ``"milvus"``.
        uri: server URI or absolute Milvus Lite path.
        collection: collection name.
        index_type: Milvus index type (FLAT, HNSW, IVF_SQ8, IVF_PQ).
        search_params: per-search parameters (ef, nprobe).
    """

    kind = "milvus"

    def __init__(self, uri: str, collection: str, *, index_type: str = "FLAT", search_params: dict | None = None,
                 dim: int | None = None, count: int | None = None, token: str = ""):
        self.uri = normalise_uri(uri)
        self.collection = collection
        self.index_type = index_type
        self.search_params = dict(search_params or {})
        self._dim = dim
        self._count = count
        self.client = client(self.uri, token)

    # --- writing ---
    @classmethod
    def create(cls, uri: str, base: str, vectors: np.ndarray, columns: dict, spec: IndexSpec, *,
               description: dict, token: str = "", batch: int = INSERT_BATCH) -> "MilvusStore":
        """Create a new collection ``<base>_<stamp>`` and write every row in batches.

        Args:
            uri: server URI or Milvus Lite ``.db`` path.
            base: collection base name.
            vectors: (N, D) float32 unit rows; row i gets primary key i.
            columns: items columns (``perf_id``, ``work_id``, metadata), N each.
            spec: the index kind chosen for (N, D).
            description: model_hash, feature, ... recorded in the collection.
            batch: rows per insert call.

        Returns:
            The loaded store. On any failure the new collection is dropped.
        """
        pm = _pymilvus()
        n, d = vectors.shape
        c = client(uri, token)
        name = f"{check_base(base)}_{time.strftime('%Y%m%d%H%M%S')}_{time.perf_counter_ns() % 100000:05d}"
        index_type, build, search = milvus_index(spec, normalise_uri(uri))
        record = json.dumps({"coversearch": DESCRIPTION_VERSION, "dim": d, "count": n, **description}, sort_keys=True)
        schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=record)
        schema.add_field("row", pm.DataType.INT64, is_primary=True)
        schema.add_field("perf_id", pm.DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("work_id", pm.DataType.VARCHAR, max_length=MAX_VARCHAR)
        schema.add_field("meta", pm.DataType.JSON)
        schema.add_field("vector", pm.DataType.FLOAT_VECTOR, dim=d)
        try:
            # the record goes in a collection property (Milvus Lite keeps no description) and the description
            c.create_collection(name, schema=schema, description=record, properties={RECORD_PROPERTY: record})
        except Exception as e:
            raise ConfigError(f"Milvus at {uri}: cannot create collection {name}: {_first_line(e)}") from None
        try:
            perf, work = columns["perf_id"], columns["work_id"]
            for a in range(0, n, batch):
                rows = [{"row": i, "perf_id": str(perf[i])[:MAX_VARCHAR], "work_id": str(work[i])[:MAX_VARCHAR],
                         "meta": _meta(columns, i), "vector": vectors[i].tolist()} for i in range(a, min(n, a + batch))]
                c.insert(name, rows)
            c.flush(name)
            ip = c.prepare_index_params()
            ip.add_index(field_name="vector", index_type=index_type, metric_type="IP", params=build)
            c.create_index(name, ip)
            c.load_collection(name)
        except BaseException as e:
            _drop_quietly(c, name)
            if isinstance(e, Exception):
                raise ConfigError(f"Milvus at {uri}: writing collection {name} failed: {_first_line(e)}") from None
            raise
        return cls(uri, name, index_type=index_type, search_params=search, dim=d, count=n, token=token)

    def describe(self) -> dict:
        """What the manifest records about this store."""
        return {"kind": self.kind, "uri": self.uri, "collection": self.collection, "index_type": self.index_type,
                "search_params": dict(self.search_params), "metric": "IP"}

    @classmethod
    def from_record(cls, rec: dict, *, uri: str | None = None, token: str = "") -> "MilvusStore":
        """Open the store a manifest's ``extra.store`` names (``uri`` overrides the recorded one)."""
        return cls(uri or rec["uri"], rec["collection"], index_type=rec.get("index_type", "FLAT"),
                   search_params=rec.get("search_params"), token=token)

    def drop(self) -> None:
        _drop_quietly(self.client, self.collection)

    # --- checks ---
    def info(self) -> dict:
        """The collection's coversearch record (description), vector dim and entity count.

        Raises:
            IndexMismatchError: the collection is missing or not a coversearch collection.
        """
        c = self.client
        try:
            if not c.has_collection(self.collection):
                raise IndexMismatchError(f"Milvus collection {self.collection} not found at {self.uri}; "
                                         "rebuild the index with `coversearch build-index --store milvus`")
            desc = c.describe_collection(self.collection)
            stats = c.get_collection_stats(self.collection)
        except IndexMismatchError:
            raise
        except Exception as e:
            raise IndexMismatchError(f"Milvus at {self.uri}: cannot describe {self.collection}: {_first_line(e)}") from None
        rec = {}
        for text in ((desc.get("properties") or {}).get(RECORD_PROPERTY), desc.get("description")):
            try:
                rec = json.loads(text or "{}")
            except ValueError:
                continue
            if rec:
                break
        if rec.get("coversearch") != DESCRIPTION_VERSION:
            raise IndexMismatchError(f"Milvus collection {self.collection} at {self.uri} was not written by coversearch")
        vec = next((f for f in desc.get("fields", []) if f.get("name") == "vector"), None)
        dim = int((vec or {}).get("params", {}).get("dim", -1))
        return {**rec, "vector_dim": dim, "row_count": int(stats.get("row_count", -1))}

    def check(self, *, model_hash: str, dim: int, count: int | None = None, what: str = "index") -> dict:
        """Fail with one line unless the collection holds ``count`` vectors of ``dim`` by ``model_hash``.

        Raises:
            IndexMismatchError: model, dimension or count differ.
        """
        info = self.info()
        if info.get("model_hash") != model_hash or info["vector_dim"] != int(dim) or int(info.get("dim", -1)) != int(dim):
            raise IndexMismatchError(
                f"Milvus collection {self.collection} holds vectors of model {info.get('model_hash') or '?'} "
                f"(dim {info['vector_dim']}), but the {what} is model {model_hash} (dim {dim}); "
                "rebuild it with `coversearch build-index --store milvus` or pass the matching --model")
        if count is not None and info["row_count"] != int(count):
            raise IndexMismatchError(f"Milvus collection {self.collection} holds {info['row_count']} vectors, "
                                     f"the index manifest says {count}; rebuild the index")
        self._dim, self._count = info["vector_dim"], info["row_count"]
        return info

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self.info()["vector_dim"]
        return int(self._dim)

    @property
    def count(self) -> int:
        if self._count is None:
            self._count = self.info()["row_count"]
        return int(self._count)

    # --- reading ---
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest rows by inner product (= cosine on unit vectors).

        Returns:
            scores (Q, k) float32 descending; rows (Q, k) int64, -1 where fewer than k exist.
        """
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1] != self.dim:
            raise IndexMismatchError(f"query dim {q.shape[1]} != Milvus collection {self.collection} dim {self.dim}")
        k = max(1, min(int(k), self.count, 16384))  # 16384: Milvus's topk limit
        try:
            res = self.client.search(self.collection, data=q.tolist(), limit=k, anns_field="vector",
                                     search_params={"metric_type": "IP", "params": dict(self.search_params)},
                                     output_fields=["row"])
        except Exception as e:
            raise IndexMismatchError(f"Milvus search in {self.collection} failed: {_first_line(e)}") from None
        scores = np.full((q.shape[0], k), -np.inf, np.float32)
        rows = np.full((q.shape[0], k), -1, np.int64)
        for i, hits in enumerate(res):
            for j, h in enumerate(list(hits)[:k]):
                rows[i, j] = int(h.get("id", h.get("row")))
                scores[i, j] = float(h["distance"])
        return scores, rows

    def get(self, rows: list[int]) -> list[dict]:
        """Entities (row, perf_id, work_id, meta, vector) by primary key, in the order asked."""
        try:
            got = self.client.get(self.collection, ids=[int(r) for r in rows],
                                  output_fields=["row", "perf_id", "work_id", "meta", "vector"])
        except Exception as e:
            raise IndexMismatchError(f"Milvus get from {self.collection} failed: {_first_line(e)}") from None
        by_row = {int(g["row"]): g for g in got}
        missing = [r for r in rows if int(r) not in by_row]
        if missing:
            raise IndexMismatchError(f"Milvus collection {self.collection} lacks row {missing[0]}; rebuild the index")
        return [by_row[int(r)] for r in rows]

    def vector_of_row(self, row: int, perf_id: str | None = None) -> np.ndarray:
        """(D,) float32 vector stored for ``row``; checks that the row is ``perf_id``."""
        ent = self.get([row])[0]
        if perf_id is not None and ent["perf_id"] != perf_id:
            raise IndexMismatchError(f"Milvus collection {self.collection}: row {row} is {ent['perf_id']}, "
                                     f"the items table says {perf_id}; rebuild the index")
        return np.asarray(ent["vector"], np.float32)

    def fetch_vectors(self, batch: int = FETCH_BATCH) -> np.ndarray:
        """Every stored vector, (count, D) float32, row i = primary key i."""
        n, d = self.count, self.dim
        out = np.zeros((n, d), np.float32)
        seen = 0
        for a in range(0, n, batch):
            b = min(n, a + batch)
            try:
                got = self.client.query(self.collection, filter=f"row >= {a} and row < {b}",
                                        output_fields=["row", "vector"], limit=b - a)
            except Exception as e:
                raise IndexMismatchError(f"Milvus query of {self.collection} failed: {_first_line(e)}") from None
            for g in got:
                out[int(g["row"])] = g["vector"]
            seen += len(got)
        if seen != n:
            raise IndexMismatchError(f"Milvus collection {self.collection} returned {seen} of {n} vectors; rebuild the index")
        return out


def _drop_quietly(c, name: str) -> None:
    try:
        if c.has_collection(name):
            c.drop_collection(name)
    except Exception:  # best effort: a leftover collection is named <base>_<stamp> and harmless
        pass
