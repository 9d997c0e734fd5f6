"""The index folder, a contract: write it atomically, load it with checks.

Layout of ``index_dir``::

    items.parquet   row i = FAISS id i: perf_id, work_id, metadata
    vectors.npy     (N, D) float32 unit vectors -- the source of truth
    index.faiss     derived FAISS index (rebuildable from vectors.npy); absent
                    when the vectors are served from a Milvus collection instead
                    (``extra.store`` in the manifest names it: store.py, milvus_store.py)
    sequences.npy   prepared chroma of every item, offsets.npy: where each
                    starts (:mod:`coversearch.index.sequences`; re-ranking
                    reads them here, never the source data)
    rerank.json     the re-rank settings of this index
    manifest.json   Manifest: model, feature, counts, index kind, recall, files

:func:`write_bundle` builds everything in a temporary folder beside
``index_dir`` and swaps it in only when complete, so an interrupted build
leaves the previous index intact. :func:`load_bundle` checks existence,
counts, sizes and dimensions and raises :class:`IndexMismatchError` with one
line on any inconsistency. Nothing here imports torch: a query by id must
stay light.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from coversearch._io import atomic_dir, write_bytes_atomic, write_json_atomic
from coversearch.errors import IndexMismatchError, UnknownIdError
from coversearch.index.choose import IndexSpec, choose_index
from coversearch.index.manifest import FORMAT_VERSION, Manifest, file_record
from coversearch.index.sequences import open_sequences, write_sequences
from coversearch.index.store import FaissStore, StoreConfig, build_faiss, load_faiss, save_faiss
from coversearch.index.table import make_table, read_items

ITEMS = "items.parquet"
VECTORS = "vectors.npy"
INDEX = "index.faiss"
MANIFEST = "manifest.json"
OWN_MODEL = "model.pt"  # an adapted index carries its encoder (+ model.json beside it)
RECALL_SAMPLE = 1000
LATENCY_SAMPLE = 200
SAMPLE_SEED = 0


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"vectors must be a non-empty (N, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"vector row {int(np.argmin(norms[:, 0]))} is all zeros")
    # Renormalise even near-unit rows: float32 drift would make self-cosines != 1.
    return (x / norms).astype(np.float32)


def measure(index, vectors: np.ndarray, *, k: int = 10, sample: int = RECALL_SAMPLE,
            latency_sample: int = LATENCY_SAMPLE, exact: bool = False) -> tuple[float, float]:
    """Recall@k against exact search, and single-query latency.

    Args:
        index: the FAISS index built from ``vectors``, or a store (FaissStore, MilvusStore).
        vectors: (N, D) float32 unit vectors.
        k: neighbours compared.
        sample: queries drawn (fixed seed) from the rows, at most N.
        latency_sample: of those, how many are timed one by one.
        exact: the index is exact (flat): skip the recall computation.

    Returns:
        (recall_at_k, mean latency in ms).
    """
    store = index if hasattr(index, "kind") else FaissStore(index)
    n = vectors.shape[0]
    rng = np.random.default_rng(SAMPLE_SEED)
    rows = np.sort(rng.choice(n, min(sample, n), replace=False))
    q = np.ascontiguousarray(vectors[rows])
    kk = min(k, n)
    recall = 1.0
    if not exact:
        _, got = store.search(q, kk)
        # exact top-k in query chunks so the (chunk, N) block stays <= ~256 MB
        step = max(1, (1 << 26) // n)
        hits = 0
        for a in range(0, len(rows), step):
            sims = q[a : a + step] @ vectors.T  # (step, N)
            truth = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            hits += sum(len(set(t.tolist()) & set(g.tolist())) for t, g in zip(truth, got[a : a + step]))
        recall = hits / (kk * len(rows))
    lat = q[:latency_sample]
    t0 = time.perf_counter()
    for i in range(lat.shape[0]):
        store.search(lat[i : i + 1], kk)
    latency_ms = 1000.0 * (time.perf_counter() - t0) / max(1, lat.shape[0])
    return float(recall), float(latency_ms)


def write_bundle(
    index_dir: str | os.PathLike,
    vectors: np.ndarray,
    items_columns: dict[str, list],
    *,
    spec: IndexSpec | None = None,
    manifest_fields: dict | None = None,
    sequences: Sequence[np.ndarray] | None = None,
    json_files: dict[str, dict] | None = None,
    store: StoreConfig | None = None,
    extra_files: dict[str, str | os.PathLike] | None = None,
) -> Manifest:
    """Write the index folder atomically.

    Args:
        index_dir: destination; replaced only once the new folder is complete.
        vectors: (N, D) float32 embeddings (rows renormalised to unit length).
        items_columns: equal-length columns, at least ``perf_id`` and
            ``work_id``; row i describes vector i.
        spec: index kind and parameters; default ``choose_index(N, D)``.
        manifest_fields: Manifest fields (model_hash, model_name, feature,
            hop, source, extra, ...); keys that are not Manifest fields go
            into ``extra``. count, dim, index kind/params, recall, latency,
            files, created and version are filled in here.
        sequences: N prepared (T, 12) sequences in row order, stored for
            re-ranking (:mod:`coversearch.index.sequences`); None = none.
        json_files: small JSON files to store and list (e.g. ``rerank.json``).
        store: where the vectors are searched: FAISS (default, ``index.faiss``
            in the folder) or a new Milvus collection (recorded in the
            manifest's ``extra.store``; dropped again if the build fails). The
            collection of the replaced folder is kept one more build (as
            ``previous``: a server still on the old folder keeps answering);
            the one before it is dropped after the swap.
        extra_files: ``{name: source path}`` copied into the folder (e.g. the
            index's own adapted model, ``model.pt`` + ``model.json``); listed
            with size and hash in the manifest like every file (``rerank.json``
            too: ``tune-rerank`` rewrites it with its manifest entry).

    Returns:
        The written :class:`Manifest`.

    Raises:
        ValueError: bad vectors, columns of the wrong length, duplicate perf ids.
    """
    from coversearch import __version__

    x = _unit_rows(vectors)
    n, d = x.shape
    table = make_table(items_columns)
    if table.num_rows != n:
        raise ValueError(f"items table has {table.num_rows} rows for {n} vectors")
    perf_ids = table.column("perf_id").to_pylist()
    if len(set(perf_ids)) != n:
        dup = next(p for i, p in enumerate(perf_ids) if p in perf_ids[:i])
        raise ValueError(f"duplicate perf_id {dup!r} in items")
    spec = spec or choose_index(n, d)

    names = {f.name for f in fields(Manifest)}
    given = dict(manifest_fields or {})
    extra = dict(given.pop("extra", None) or {})
    extra.update({key: given.pop(key) for key in list(given) if key not in names})
    if spec.note:
        extra.setdefault("index_note", spec.note)
    if "dim" in given and int(given["dim"]) != d:
        raise ValueError(f"manifest dim {given['dim']} != vectors dim {d}")
    for key in ("count", "dim", "index_kind", "index_params", "recall_at_10", "query_latency_ms",
                "files", "created", "version", "format_version", "metric"):
        given.pop(key, None)

    import pyarrow.parquet as pq

    store = store or StoreConfig()
    old_store = _store_record(index_dir)
    new_store = None
    try:
        with atomic_dir(index_dir) as tmp:
            pq.write_table(table, tmp / ITEMS)
            np.save(tmp / VECTORS, x)
            if store.kind == "milvus":
                from coversearch.index.milvus_store import MilvusStore, collection_base

                live = new_store = MilvusStore.create(
                    store.uri, store.collection or collection_base(index_dir), x, items_columns, spec,
                    description={"model_hash": str(given.get("model_hash", "")), "feature": str(given.get("feature", ""))})
                extra["store"] = live.describe()
                if old_store and old_store.get("kind") == "milvus":
                    # kept one more build, so a server still answering from the old folder keeps working
                    extra["store"]["previous"] = {k: old_store[k] for k in ("uri", "collection")}
                names = (ITEMS, VECTORS)
            else:
                live = FaissStore(build_faiss(x, spec))
                save_faiss(live.index, tmp / INDEX)
                names = (ITEMS, VECTORS, INDEX)
            recall, latency = measure(live, x, exact=spec.kind == "flat")
            names = list(names)
            if sequences is not None:
                if len(sequences) != n:
                    raise ValueError(f"{len(sequences)} sequences for {n} vectors")
                names += list(write_sequences(tmp, sequences))
            for name, obj in (json_files or {}).items():
                (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
                names.append(name)
            for name, src in (extra_files or {}).items():
                if name in (ITEMS, VECTORS, INDEX, MANIFEST) or "/" in name or name in names:
                    raise ValueError(f"extra file name {name!r} is reserved or not a plain name")
                shutil.copyfile(src, tmp / name)
                names.append(name)
            files = {name: file_record(tmp / name) for name in names}
            manifest = Manifest(
                model_hash=str(given.pop("model_hash", "")),
                dim=d,
                count=n,
                index_kind=spec.kind,
                format_version=FORMAT_VERSION,
                index_params=dict(spec.params),
                recall_at_10=round(recall, 4),
                query_latency_ms=round(latency, 4),
                created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                version=__version__,
                files=files,
                extra=extra,
                **given,
            )
            (tmp / MANIFEST).write_text(manifest.to_json())
            _share_like_umask(tmp)
    except BaseException:
        if new_store is not None:
            new_store.drop()
        raise
    if old_store and old_store.get("kind") == "milvus":
        # drop what the replaced folder no longer needs: its predecessor's collection, and its own
        # one too when the new folder does not keep it as `previous` (a FAISS rebuild)
        _drop_store(old_store.get("previous"))
        if store.kind != "milvus":
            _drop_store(old_store)
    return manifest


def _store_record(index_dir) -> dict | None:
    """The ``extra.store`` record of the index folder currently at ``index_dir`` (None if none/unreadable)."""
    try:
        return dict(Manifest.read(Path(index_dir) / MANIFEST).extra.get("store") or {}) or None
    except IndexMismatchError:
        return None


def _drop_store(rec: dict | None) -> None:
    """Drop a Milvus collection no index folder names any more (best effort)."""
    if not rec or not rec.get("collection"):
        return
    try:
        from coversearch.index.milvus_store import MilvusStore

        MilvusStore.from_record(rec).drop()
    except Exception:  # unreachable server, pymilvus gone: the old collection stays, unreferenced
        pass


def replace_json_file(index_dir: str | os.PathLike, name: str, obj) -> None:
    """Store (or replace) a small JSON file in an index folder and list it in
    the manifest: the file first, then the manifest, each atomically (if
    interrupted between the two, loading fails on the size or hash check
    instead of reading the wrong settings).

    Raises:
        IndexMismatchError: no index at ``index_dir``.
    """
    path = Path(index_dir)
    manifest = Manifest.read(path / MANIFEST)
    if name in (ITEMS, VECTORS, INDEX, MANIFEST):
        raise ValueError(f"{name} is not a replaceable file")
    write_json_atomic(path / name, obj)
    files = dict(manifest.files)
    files[name] = file_record(path / name)
    write_bytes_atomic(path / MANIFEST, dataclasses.replace(manifest, files=files).to_json().encode())


def read_json_file(bundle: "Bundle", name: str) -> dict | None:
    """A small JSON file of the index folder, hash-checked against the manifest;
    None when the manifest does not list it.

    Raises:
        IndexMismatchError: the file is missing, changed or unreadable.
    """
    rec = bundle.manifest.files.get(name)
    if rec is None:
        return None
    if bundle._pinned is not None and name in bundle._pinned["json"]:
        return json.loads(json.dumps(bundle._pinned["json"][name]))  # a copy: callers may change it
    f = bundle.path / name
    if not f.is_file() or file_record(f)["sha256"] != rec.get("sha256"):
        raise IndexMismatchError(f"{f} was changed or removed after the index was built (sha256 differs from the "
                                 "manifest); rebuild the index or re-run `coversearch tune-rerank`")
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise IndexMismatchError(f"{f}: not JSON ({e})") from None


def _share_like_umask(folder: Path) -> None:
    # mkdtemp/mkstemp create 0700/0600 entries; an index folder should get the
    # same permissions as any folder the user creates.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for f in folder.iterdir():
        os.chmod(f, 0o666 & ~mask)


def _numeric_prefix(s: str) -> str:
    m = re.search(r"\d+", s)
    return m.group(0) if m else ""


@dataclass
class Bundle:
    """A loaded, checked index folder.

    Attributes:
        path: the folder.
        manifest: its :class:`Manifest`.
        items: pyarrow.Table, row i = FAISS id i.
        vectors: (N, D) float32 unit vectors, memory-mapped read-only.
    """

    path: Path
    manifest: Manifest
    items: object
    vectors: np.ndarray
    _index: object = field(default=None, repr=False)
    _rows: dict | None = field(default=None, repr=False)
    _records: dict = field(default_factory=dict, repr=False)  # row -> item record (see item_record)
    _pinned: dict | None = field(default=None, repr=False)  # what pin() read: sequences, JSON files
    _store: object = field(default=None, repr=False)
    milvus_uri: str | None = field(default=None, repr=False)

    @property
    def store_kind(self) -> str:
        """``faiss`` or ``milvus``: where this folder's vectors are searched."""
        return (self.manifest.extra.get("store") or {}).get("kind", "faiss")

    @property
    def store(self):
        """The store the vectors are searched in (FaissStore or MilvusStore), opened and checked on first use.

        Raises:
            IndexMismatchError: the Milvus collection is gone, or holds another model, dim or count.
        """
        if self._store is None:
            if self.store_kind == "milvus":
                from coversearch.index.milvus_store import MilvusStore

                st = MilvusStore.from_record(self.manifest.extra["store"], uri=self.milvus_uri)
                st.check(model_hash=self.manifest.model_hash, dim=self.manifest.dim, count=self.manifest.count)
                self._store = st
            else:
                self._store = FaissStore(self.index)
        return self._store

    @property
    def count(self) -> int:
        return self.manifest.count

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec(self.manifest.index_kind, dict(self.manifest.index_params))

    @property
    def index(self):
        """The FAISS index, loaded (and count-checked) on first use."""
        if self._index is None:
            if self.store_kind != "faiss":
                raise IndexMismatchError(f"index {self.path} keeps its vectors in {self.store_kind}, not in a FAISS file")
            self._index = _load_index(self.path, self.manifest)
        return self._index

    def sequences(self, *, verify_hashes: bool = False):
        """The prepared sequences stored for re-ranking (:class:`SequenceStore`), checked.

        Raises:
            IndexMismatchError: absent (an older index) or not matching the manifest.
        """
        if self._pinned is not None and "sequences" in self._pinned and not verify_hashes:
            return self._pinned["sequences"]
        return open_sequences(self.path, self.manifest.count, self.manifest.files, verify_hashes=verify_hashes)

    def check_model(self, model_hash: str, dim: int) -> None:
        """Raise IndexMismatchError if the index was built by another model or dim."""
        m = self.manifest
        if m.model_hash != model_hash or int(m.dim) != int(dim):
            raise IndexMismatchError(
                f"index {self.path} was built by model {m.model_hash or '?'} (dim {m.dim}), "
                f"but the query model is {model_hash} (dim {dim}); "
                "rebuild it with `coversearch build-index` or pass the matching --model"
            )

    def own_model(self) -> Path | None:
        """The encoder the folder carries (an adapted index), else None."""
        return self.path / OWN_MODEL if OWN_MODEL in self.manifest.files else None

    def item_record(self, row: int) -> dict:
        """Metadata of one row as a new dict of Python values, every column but ``path``
        (converted from Arrow once per row, then copied: a query's result rows)."""
        rec = self._records.get(row)
        if rec is None:
            items = self.items
            rec = {c: items.column(c)[row].as_py() for c in items.column_names if c != "path"}
            self._records[row] = rec
        return dict(rec)

    def pin(self) -> None:
        """Read now everything later calls would read from the folder by its path (the
        FAISS index, the id map, the stored sequences, the listed JSON files), so this
        object keeps answering from the files it was loaded from even after the folder
        is replaced (the HTTP server's snapshot; call it before changing ``path``)."""
        from coversearch.index.sequences import SEQUENCES

        if self.store_kind == "faiss":
            self.index  # noqa: B018 - loads it
        self._row_map()
        pinned = {"json": {}}
        if SEQUENCES in self.manifest.files:
            pinned["sequences"] = self.sequences()
        for name in self.manifest.files:
            if name.endswith(".json"):
                pinned["json"][name] = read_json_file(self, name)
        self._pinned = pinned

    def _row_map(self) -> dict:
        if self._rows is None:
            ids = self.items.column("perf_id").to_pylist()
            self._rows = {}
            for i, p in enumerate(ids):
                self._rows.setdefault(p, i)
        return self._rows

    def suggest(self, perf_id: str, n: int = 5) -> list[str]:
        """Ids close to ``perf_id``: same numeric prefix first, then difflib matches."""
        ids = list(self._row_map())
        out: list[str] = []
        num = _numeric_prefix(perf_id)
        if num:
            same = [p for p in ids if _numeric_prefix(p).startswith(num)]
            same.sort(key=lambda p: (len(p), p))
            out.extend(same[:n])
        for p in difflib.get_close_matches(perf_id, ids, n=n, cutoff=0.6):
            if p not in out:
                out.append(p)
        return out[:n]

    def row_of(self, perf_id: str) -> int:
        """FAISS row of a performance id.

        Raises:
            UnknownIdError: the id is not in the index (with suggestions).
        """
        row = self._row_map().get(str(perf_id))
        if row is None:
            near = self.suggest(str(perf_id))
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise UnknownIdError(f"unknown performance id {perf_id!r} in index {self.path}{hint}")
        return row

    def vector_of(self, perf_id: str) -> np.ndarray:
        """(D,) float32 unit vector of an indexed performance (asked of the store when it is Milvus)."""
        row = self.row_of(perf_id)
        if self.store_kind == "milvus":
            return self.store.vector_of_row(row, perf_id)
        return np.array(self.vectors[row], dtype=np.float32)

    def search(self, query_vectors: np.ndarray, k: int,
               exclude_rows: Iterable[int] | Sequence[Iterable[int]] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """k most similar rows per query (cosine), optionally excluding rows.

        Args:
            query_vectors: (Q, D) or (D,) float32 unit vectors.
            k: results per query.
            exclude_rows: rows to drop from every query's results (e.g. the
                query itself), or one iterable of rows per query.

        Returns:
            scores (Q, k) float32 cosines descending; rows (Q, k) int64,
            padded with -1 (score -inf) when fewer than k remain.
        """
        q = np.asarray(query_vectors, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1] != self.manifest.dim:
            raise IndexMismatchError(f"query dim {q.shape[1]} != index dim {self.manifest.dim} ({self.path})")
        k = int(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        per_query = _per_query_excludes(exclude_rows, q.shape[0])
        extra = max((len(e) for e in per_query), default=0)
        scores, rows = self.store.search(q, k + extra)
        out_s = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        out_r = np.full((q.shape[0], k), -1, dtype=np.int64)
        for i, ex in enumerate(per_query):
            if len(ex) <= 64:  # a query's own row or a few: np.isin costs 0.4 ms, 15x a FAISS search
                keep = [j for j, r in enumerate(rows[i].tolist()) if r >= 0 and r not in ex][:k]
            else:
                keep = np.flatnonzero((rows[i] >= 0) & ~np.isin(rows[i], list(ex)))[:k]
            s, r = scores[i][keep], rows[i][keep]
            out_s[i, : len(s)], out_r[i, : len(r)] = s, r
        return out_s, out_r


def _per_query_excludes(exclude_rows, nq: int) -> list[set]:
    if exclude_rows is None:
        return [set()] * nq
    ex = list(exclude_rows)
    if ex and all(isinstance(e, (list, tuple, set, np.ndarray)) for e in ex):
        if len(ex) != nq:
            raise ValueError(f"{len(ex)} exclude lists for {nq} queries")
        return [set(int(r) for r in e) for e in ex]
    common = set(int(r) for r in ex)
    return [common] * nq


def _load_index(path: Path, manifest: Manifest):
    spec = IndexSpec(manifest.index_kind, dict(manifest.index_params))
    index = load_faiss(path / INDEX, spec)
    if index.ntotal != manifest.count or index.d != manifest.dim:
        raise IndexMismatchError(
            f"{path / INDEX} holds {index.ntotal} vectors of dim {index.d}, "
            f"manifest says {manifest.count} of dim {manifest.dim}; rebuild the index"
        )
    return index


def load_bundle(index_dir: str | os.PathLike, *, load_index: bool = True, verify_hashes: bool = False,
                milvus_uri: str | None = None) -> Bundle:
    """Open and check an index folder.

    Checks: the folder and manifest exist; every file listed in the manifest
    exists with its recorded size (and sha256 if ``verify_hashes``); vectors
    are (count, dim) float32; items has count rows; the FAISS index (if
    loaded now) holds count vectors of dim.

    Args:
        index_dir: the folder written by :func:`write_bundle`.
        load_index: read ``index.faiss`` now (else on first search).
        verify_hashes: also compare sha256 of every file (measured ~15 ms for
            a 15,000 x 128 index, 15 MB; off by default so a query stays fast).
        milvus_uri: for an index whose vectors are in Milvus, reach the
            collection at this URI instead of the recorded one.

    Raises:
        IndexMismatchError: with one line naming the failed check.
    """
    path = Path(index_dir)
    if not (path / MANIFEST).is_file():
        raise IndexMismatchError(f"no index at {path}: run `coversearch build-index` first")
    manifest = Manifest.read(path / MANIFEST)
    in_milvus = (manifest.extra.get("store") or {}).get("kind") == "milvus"
    for name in (ITEMS, VECTORS) if in_milvus else (ITEMS, VECTORS, INDEX):
        if name not in manifest.files:
            raise IndexMismatchError(f"manifest {path / MANIFEST} does not list {name}")
    for name, rec in manifest.files.items():
        f = path / name
        if not f.is_file():
            raise IndexMismatchError(f"missing {f}: the index folder is incomplete; rebuild it")
        size = f.stat().st_size
        if size != rec.get("bytes"):
            raise IndexMismatchError(f"{f} is {size} bytes, manifest says {rec.get('bytes')}; rebuild the index")
        if verify_hashes and file_record(f)["sha256"] != rec.get("sha256"):
            raise IndexMismatchError(f"{f} does not match its sha256 in the manifest; rebuild the index")
    try:
        vectors = np.load(path / VECTORS, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise IndexMismatchError(f"cannot read {path / VECTORS}: {e}") from None
    if vectors.dtype != np.float32 or vectors.shape != (manifest.count, manifest.dim):
        raise IndexMismatchError(
            f"{path / VECTORS} is {vectors.dtype} {vectors.shape}, "
            f"manifest says float32 ({manifest.count}, {manifest.dim})"
        )
    items = read_items(path / ITEMS)
    if items.num_rows != manifest.count:
        raise IndexMismatchError(f"{path / ITEMS} has {items.num_rows} rows, manifest says {manifest.count}")
    if milvus_uri and not in_milvus:
        raise IndexMismatchError(f"index {path} keeps its vectors in FAISS, not Milvus; "
                                 "rebuild it with `coversearch build-index --store milvus` to use --milvus-uri")
    bundle = Bundle(path=path, manifest=manifest, items=items, vectors=vectors, milvus_uri=milvus_uri)
    if load_index:
        bundle.store  # noqa: B018  (opens and checks FAISS or Milvus now)
    return bundle
