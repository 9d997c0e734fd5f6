"""Writing performances and metadata exactly as Da-TACOS stores them.

Da-TACOS files were written by deepdish (on top of PyTables); this module
replicates their HDF5 objects with plain h5py, byte for byte where a reader
could notice: the root bookkeeping attributes (``CLASS``, ``DEEPDISH_IO_VERSION``,
``PYTABLES_FORMAT_VERSION``, ``TITLE``, ``VERSION``) with the same string
padding and character sets, ``label``/``track_id`` as bytes, every dataset a
PyTables ``CARRAY`` (gzip 9 + shuffle, ~64 KiB chunks) and the key group of
the ``key`` feature. An optional root attribute ``hop_length`` (int64) is
written only when the frame hop is not the real 512 samples at 44.1 kHz.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

import json

from coversearch._io import atomic_path, write_bytes_atomic
from coversearch.config import DEFAULT_HOP

# PyTables sizes CARRAY chunks to about 64 KiB (checked on the real files:
# hpcp (15227, 12) float32 -> (1365, 12); chroma_cens float64 -> (682, 12);
# crema (12, 15226) float32 -> (1, 15226)).
_CHUNK_BYTES = 65536


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The chunk shape PyTables would pick for a 2-D or 1-D CARRAY of ``shape``."""
    if len(shape) == 1:
        return (max(1, min(shape[0], _CHUNK_BYTES // itemsize)),)
    rows, cols = shape
    row_bytes = cols * itemsize
    if row_bytes >= _CHUNK_BYTES:
        return (1, max(1, min(cols, _CHUNK_BYTES // itemsize)))
    return (max(1, min(rows, _CHUNK_BYTES // row_bytes)), cols)


def _str_attr(obj, name: str, value: bytes | None, *, nullterm: bool, utf8: bool) -> None:
    """Create a fixed-length string attribute with PyTables' padding and charset.

    ``value=None`` writes an attribute with a NULL dataspace (PyTables' empty TITLE).
    """
    size = max(1, len(value or b""))
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(h5py.h5t.STR_NULLTERM if nullterm else h5py.h5t.STR_NULLPAD)
    tid.set_cset(h5py.h5t.CSET_UTF8 if utf8 else h5py.h5t.CSET_ASCII)
    bname = name.encode()
    if value is None:
        space = h5py.h5s.create(h5py.h5s.NULL)
        h5py.h5a.create(obj.id, bname, tid, space)
        return
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    aid = h5py.h5a.create(obj.id, bname, tid, space)
    aid.write(np.array(value, dtype=f"S{size}"), mtype=tid)


def _root_attrs(f: h5py.File, work_id: str, perf_id: str, hop: int) -> None:
    _str_attr(f, "CLASS", b"GROUP", nullterm=False, utf8=False)
    f.attrs.create("DEEPDISH_IO_VERSION", np.int64(12))
    _str_attr(f, "PYTABLES_FORMAT_VERSION", b"2.1", nullterm=False, utf8=False)
    _str_attr(f, "TITLE", None, nullterm=False, utf8=True)
    _str_attr(f, "VERSION", b"1.0", nullterm=False, utf8=False)
    _str_attr(f, "label", work_id.encode(), nullterm=False, utf8=False)
    _str_attr(f, "track_id", perf_id.encode(), nullterm=False, utf8=False)
    if hop != DEFAULT_HOP:
        f.attrs.create("hop_length", np.int64(hop))


def _carray(f: h5py.File, name: str, data: np.ndarray) -> None:
    ds = f.create_dataset(
        name,
        data=data,
        chunks=chunk_shape(data.shape, data.dtype.itemsize),
        compression="gzip",
        compression_opts=9,
        shuffle=True,
        fillvalue=0,
    )
    _str_attr(ds, "CLASS", b"CARRAY", nullterm=True, utf8=False)
    _str_attr(ds, "TITLE", None, nullterm=True, utf8=False)
    _str_attr(ds, "VERSION", b"1.1", nullterm=True, utf8=False)


def _key_group(f: h5py.File, key: tuple[str, str, float]) -> None:
    g = f.create_group("key_extractor")
    _str_attr(g, "CLASS", b"GROUP", nullterm=True, utf8=True)
    _str_attr(g, "TITLE", b"dict:3", nullterm=True, utf8=True)
    _str_attr(g, "VERSION", b"1.0", nullterm=True, utf8=True)
    _str_attr(g, "key", key[0].encode(), nullterm=True, utf8=True)
    _str_attr(g, "scale", key[1].encode(), nullterm=True, utf8=True)
    g.attrs.create("strength", np.float64(key[2]))


def write_performance(
    path: str | os.PathLike,
    work_id: str,
    perf_id: str,
    arrays: dict[str, np.ndarray],
    hop: int = DEFAULT_HOP,
    key: tuple[str, str, float] | None = None,
) -> None:
    """Write one Da-TACOS performance file atomically.

    Args:
        path: the ``.h5`` file to create (parent folders are made).
        work_id: ``W_<int>``, stored as the root attribute ``label``.
        perf_id: ``P_<int>``, stored as the root attribute ``track_id``.
        arrays: dataset name (``hpcp``, ``crema``, ``chroma_cens``) -> array,
            already in the subset's orientation and dtype.
        hop: frame hop in samples at 44.1 kHz; recorded only when not 512.
        key: ``(tonic, scale, strength)`` for a ``key_extractor`` group, or None.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="earliest") as f:
            _root_attrs(f, work_id, perf_id, hop)
            for name in sorted(arrays):
                _carray(f, name, arrays[name])
            if key is not None:
                _key_group(f, key)


def write_performance_from_parts(
    path: str | os.PathLike,
    work_id: str,
    perf_id: str,
    parts: dict[str, os.PathLike],
    hop: int = DEFAULT_HOP,
    key: tuple[str, str, float] | None = None,
) -> None:
    """Write a single file whose datasets are copied from per-feature files.

    The gzip-9 chunks are copied as they are (HDF5 direct chunk read/write),
    so the single-files layout costs no second compression.

    Args:
        path: the single ``.h5`` file to create.
        work_id, perf_id, hop, key: as in :func:`write_performance`.
        parts: dataset name -> per-feature file holding it.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="earliest") as f:
            _root_attrs(f, work_id, perf_id, hop)
            for name in sorted(parts):
                with h5py.File(parts[name], "r") as src_file:
                    src = src_file[name]
                    ds = f.create_dataset(name, shape=src.shape, dtype=src.dtype, chunks=src.chunks,
                                          compression="gzip", compression_opts=9, shuffle=True, fillvalue=0)
                    grid = [range(0, n, c) for n, c in zip(src.shape, src.chunks)]
                    for off in np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, len(grid)):
                        mask, raw = src.id.read_direct_chunk(tuple(int(o) for o in off))
                        ds.id.write_direct_chunk(tuple(int(o) for o in off), raw, mask)
                _str_attr(ds, "CLASS", b"CARRAY", nullterm=True, utf8=False)
                _str_attr(ds, "TITLE", None, nullterm=True, utf8=False)
                _str_attr(ds, "VERSION", b"1.1", nullterm=True, utf8=False)
            if key is not None:
                _key_group(f, key)


def perf_paths(root: Path, subset: str, work_id: str, perf_id: str, layout: str,
               features: tuple[str, ...]) -> list[tuple[Path, tuple[str, ...]]]:
    """Files to write for one performance: ``[(path, features in it), ...]``.

    ``layout`` is ``per-feature``, ``single-files`` or ``both``.
    """
    out: list[tuple[Path, tuple[str, ...]]] = []
    if layout in ("per-feature", "both"):
        for feat in features:
            out.append((root / f"da-tacos_{subset}_subset_{feat}" / f"{work_id}_{feat}"
                        / f"{perf_id}_{feat}.h5", (feat,)))
    if layout in ("single-files", "both"):
        out.append((root / f"da-tacos_{subset}_subset_single_files" / work_id / f"{perf_id}.h5",
                    tuple(features)))
    return out


def write_metadata(root: Path, subset: str, metadata: dict[str, dict[str, dict]]) -> Path:
    """Write ``da-tacos_metadata/da-tacos_{subset}_subset_metadata.json``.

    Args:
        metadata: ``{work_id: {perf_id: record}}`` as in the real file.

    Returns:
        The path written.
    """
    path = Path(root) / "da-tacos_metadata" / f"da-tacos_{subset}_subset_metadata.json"
    # insertion order and one-space indent, as the real file (no sort_keys)
    write_bytes_atomic(path, (json.dumps(metadata, indent=1) + "\n").encode())
    return path


__all__ = ["write_performance", "write_performance_from_parts", "write_metadata", "perf_paths", "chunk_shape"]
