"""The server's index: one immutable :class:`Snapshot` behind one reference,
replaced whole on reload, so a request sees either the old index or the new
one, never a mix.

``build-index`` replaces an index folder by renames (old -> ``.old``, new ->
final, delete ``.old``; coversearch/_io.py). A reload must not read half of
its files from the old folder and half from the new one, so
:func:`load_pinned` opens the folder once and reads every file through that
open directory (``/proc/self/fd/N/...`` on Linux): whatever is renamed
meanwhile, all files come from one folder, and if that folder is deleted
under the load, the load fails and the previous snapshot stays in service.
Elsewhere it falls back to reading the manifest before and after the load.

A request takes ``holder.current`` once and uses only that snapshot; the
watcher thread (or ``POST /api/reload``) builds the next snapshot aside
(items, FAISS index, catalogue, work map) and then assigns the reference,
which is atomic in Python.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coversearch.errors import IndexMismatchError
from coversearch.index.bundle import MANIFEST, Bundle, load_bundle
from coversearch.serve.catalogue import Catalogue

log = logging.getLogger("coversearch.serve")


@dataclass
class Snapshot:
    """One loaded index and what the server derives from it once.

    Attributes:
        bundle: the loaded, checked index folder (FAISS index in memory).
        catalogue: prefix search over its items.
        work_rows: work id -> (n,) int64 rows of its performances.
        signature: (device, inode, mtime_ns) of the manifest it was loaded from.
        version: first 12 hex digits of the manifest's sha256 (``X-Coversearch-Index``).
        loaded_at: UNIX time of the load.
        generation: 1 for the first load, +1 per reload.
    """

    bundle: Bundle
    catalogue: Catalogue
    work_rows: dict
    signature: tuple
    version: str
    loaded_at: float
    generation: int = 1
    seconds: float = 0.0
    _items_cache: dict = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return self.bundle.count

    def item(self, row: int) -> dict:
        """Metadata of one row (no ``path``: the server never exposes file locations)."""
        return self.bundle.item_record(int(row))


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def load_pinned(index_dir: str | os.PathLike, milvus_uri: str | None = None) -> tuple[Bundle, tuple, bytes]:
    """Load an index folder so that every file comes from the same folder.

    Returns:
        (bundle with ``path`` = ``index_dir``, manifest signature, manifest bytes).

    Raises:
        IndexMismatchError: no index there, an inconsistent one, or the folder
            was swapped or deleted during the load (try again).
    """
    path = Path(index_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        raise IndexMismatchError(f"no index at {path}: run `coversearch build-index` first") from None
    try:
        pinned = Path(f"/proc/self/fd/{fd}")
        try:
            os.stat(MANIFEST, dir_fd=fd)
        except FileNotFoundError:
            raise IndexMismatchError(f"no index at {path}: run `coversearch build-index` first") from None
        if pinned.is_dir():
            try:
                st = os.stat(MANIFEST, dir_fd=fd)
                raw = (pinned / MANIFEST).read_bytes()
                bundle = load_bundle(pinned, load_index=True, milvus_uri=milvus_uri)
                bundle.pin()  # sequences and JSON files read now, through the pinned folder
            except (OSError, IndexMismatchError) as e:
                msg = str(e).replace(str(pinned), str(path))
                raise IndexMismatchError(f"cannot load {path} (was it being replaced?): {msg}") from None
        else:  # no /proc: read the manifest before and after; retry if it changed
            st = os.stat(path / MANIFEST)
            raw = (path / MANIFEST).read_bytes()
            bundle = load_bundle(path, load_index=True, milvus_uri=milvus_uri)
            bundle.pin()
            if _signature(os.stat(path / MANIFEST)) != _signature(st):
                raise IndexMismatchError(f"{path} was replaced during the load; try again")
    finally:
        os.close(fd)
    bundle.path = path
    return bundle, _signature(st), raw


def make_snapshot(index_dir: str | os.PathLike, generation: int = 1, milvus_uri: str | None = None) -> Snapshot:
    """Load ``index_dir`` and derive the catalogue and work map (all before anyone sees it)."""
    t0 = time.perf_counter()
    bundle, sig, raw = load_pinned(index_dir, milvus_uri)
    works = np.asarray(bundle.items.column("work_id").to_pylist(), dtype=object)
    order = np.argsort(works, kind="stable")
    uniq, starts = np.unique(works[order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    work_rows = {str(w): order[a:b].astype(np.int64) for w, a, b in zip(uniq, starts, bounds)}
    return Snapshot(bundle=bundle, catalogue=Catalogue(bundle.items), work_rows=work_rows, signature=sig,
                    version=hashlib.sha256(raw).hexdigest()[:12], loaded_at=time.time(), generation=generation,
                    seconds=time.perf_counter() - t0)


class IndexHolder:
    """Holds the current snapshot of ``index_dir`` and replaces it when the folder changes.

    Args:
        index_dir: the index folder (``build-index --index-dir``).
        watch_seconds: poll the manifest's identity this often in a background
            thread (0 = only on :meth:`reload`).
    """

    def __init__(self, index_dir: str | os.PathLike, *, watch_seconds: float = 2.0,
                 milvus_uri: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.milvus_uri = milvus_uri
        self.current: Snapshot = make_snapshot(self.index_dir, milvus_uri=milvus_uri)
        self.watch_seconds = float(watch_seconds)
        self.last_error: str | None = None
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple | None = None  # manifest signature whose load failed (not retried until it changes)

    def _on_disk(self) -> tuple | None:
        try:
            return _signature(os.stat(self.index_dir / MANIFEST))
        except OSError:  # mid-swap (the final name is briefly absent) or removed
            return None

    def changed(self) -> bool:
        """Whether the folder now holds another manifest than the one in service."""
        sig = self._on_disk()
        return sig is not None and sig != self.current.signature

    def reload(self, *, force: bool = False) -> dict:
        """Load the folder aside and swap it in if it changed (or ``force``).

        Returns:
            ``{"reloaded": bool, "generation", "version", "count", "seconds"}``.

        Raises:
            IndexMismatchError: the new folder cannot be loaded; the previous
                snapshot stays in service.
        """
        with self._lock:
            if not force and not self.changed():
                cur = self.current
                return {"reloaded": False, "generation": cur.generation, "version": cur.version, "count": cur.count}
            sig = self._on_disk()
            try:
                snap = make_snapshot(self.index_dir, generation=self.current.generation + 1, milvus_uri=self.milvus_uri)
            except IndexMismatchError as e:
                self.last_error = str(e)
                self._failed = sig
                raise
            old = self.current
            if snap.bundle.manifest.dim != old.bundle.manifest.dim or \
                    snap.bundle.manifest.model_hash != old.bundle.manifest.model_hash:
                log.warning("the new index uses model %s (dim %d), the old one %s (dim %d)",
                            snap.bundle.manifest.model_hash, snap.bundle.manifest.dim,
                            old.bundle.manifest.model_hash, old.bundle.manifest.dim)
            self.current = snap  # the swap: one reference assignment
            self.last_error = None
            log.warning("reloaded %s: %d items, index %s (generation %d, %.2f s)", self.index_dir, snap.count,
                        snap.version, snap.generation, snap.seconds)
            return {"reloaded": True, "generation": snap.generation, "version": snap.version, "count": snap.count,
                    "seconds": round(snap.seconds, 3)}

    def start(self) -> None:
        """Start the watcher thread (no-op if ``watch_seconds`` is 0)."""
        if self.watch_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="coversearch-index-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_seconds):
            sig = self._on_disk()
            if sig is not None and sig != self.current.signature and sig != self._failed:
                try:
                    self.reload()
                except IndexMismatchError as e:  # keep serving the old index; retried next poll
                    log.warning("reload of %s failed, still serving generation %d: %s", self.index_dir,
                                self.current.generation, e)
