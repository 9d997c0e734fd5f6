"""The prepared sequences inside an index folder: what re-ranking aligns.

An index folder carries its own copy of every item's prepared chroma (row i
= FAISS id i), so moving, deleting or re-preparing the source data cannot
change a re-ranked answer. Two plain numpy files, memory-mapped on load::

    sequences.npy   (sum T_i, 12) float32   all frames, item after item
    offsets.npy     (N + 1,) int64          item i = frames[offsets[i]:offsets[i+1]]

Both are listed (size + sha256) in the manifest like every other file;
:func:`open_sequences` checks the small one's hash and the shapes on every
open, and the large one's hash when asked (``evaluate`` does; a query by id
checks sizes only, ~1 s per 400 MB saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from coversearch.errors import IndexMismatchError

SEQUENCES = "sequences.npy"
OFFSETS = "offsets.npy"


def write_sequences(folder: str | Path, seqs: Sequence[np.ndarray]) -> tuple[str, str]:
    """Write ``sequences.npy`` and ``offsets.npy`` into ``folder`` (a folder
    being built aside: the caller swaps it in atomically).

    Args:
        folder: destination folder.
        seqs: N arrays (T_i, 12) float32 at the prepared rate, row order.

    Returns:
        The two file names written.
    """
    folder = Path(folder)
    offsets = np.zeros(len(seqs) + 1, np.int64)
    offsets[1:] = np.cumsum([np.asarray(s).shape[0] for s in seqs])
    frames = np.lib.format.open_memmap(folder / SEQUENCES, mode="w+", dtype=np.float32, shape=(int(offsets[-1]), 12))
    for i, s in enumerate(seqs):
        s = np.asarray(s, np.float32)
        if s.ndim != 2 or s.shape[1] != 12:
            raise ValueError(f"sequence {i} has shape {s.shape}, expected (T, 12)")
        frames[offsets[i]:offsets[i + 1]] = s
    frames.flush()
    del frames
    np.save(folder / OFFSETS, offsets)
    return SEQUENCES, OFFSETS


class SequenceStore:
    """Read-only, memory-mapped prepared sequences of an index folder.

    ``store(row)`` / ``store.sequence(row)`` -> (T, 12) float32 view.
    """

    def __init__(self, frames: np.ndarray, offsets: np.ndarray):
        self.frames = frames
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sequence(self, row: int) -> np.ndarray:
        row = int(row)
        return self.frames[self.offsets[row]:self.offsets[row + 1]]

    __call__ = sequence

    def sequences(self) -> list[np.ndarray]:
        """All N (T_i, 12) views in row order (the interface of ``PreparedCache.sequences``)."""
        return [self.sequence(i) for i in range(len(self))]

    def lengths(self) -> np.ndarray:
        """(N,) int64 frames per item."""
        return np.diff(self.offsets)


def open_sequences(path: str | Path, count: int, files: dict, *, verify_hashes: bool = False) -> SequenceStore:
    """Open and check the sequences of an index folder.

    Args:
        path: the index folder.
        count: items in the index (manifest).
        files: the manifest's ``files`` records.
        verify_hashes: also check the sha256 of ``sequences.npy``.

    Raises:
        IndexMismatchError: one line naming what does not match.
    """
    from coversearch.index.manifest import file_record

    path = Path(path)
    for name in (SEQUENCES, OFFSETS):
        if name not in files:
            raise IndexMismatchError(
                f"index {path} holds no prepared sequences for re-ranking (built before they were stored "
                "in the index folder); rebuild it with `coversearch build-index`")
        f = path / name
        if not f.is_file() or f.stat().st_size != files[name].get("bytes"):
            raise IndexMismatchError(f"re-rank data {f} is missing or not the size the manifest lists; rebuild the index")
        if (name == OFFSETS or verify_hashes) and file_record(f)["sha256"] != files[name].get("sha256"):
            raise IndexMismatchError(f"re-rank data {f} does not match its sha256 in the manifest; rebuild the index")
    try:
        offsets = np.load(path / OFFSETS)
        frames = np.load(path / SEQUENCES, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise IndexMismatchError(f"cannot read the re-rank data of {path}: {e}") from None
    if offsets.shape != (count + 1,) or frames.ndim != 2 or frames.shape[1] != 12 \
            or int(offsets[-1]) != frames.shape[0] or (np.diff(offsets) < 1).any():
        raise IndexMismatchError(f"re-rank data of {path} does not describe its {count} items; rebuild the index")
    return SequenceStore(frames, offsets)
