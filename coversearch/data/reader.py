"""Read one Da-TACOS performance file into a (T, 12) chroma array.

Free ``load_*`` functions in the manner of mirdata. Facts of the real files
that shape this code (see ``../shared/datacos/README.md``):

* ``hpcp`` is (T, 12) float32, ``chroma_cens`` (T, 12) float64, ``crema`` is
  (T, 12) in the benchmark subset but (12, T) in the cover-analysis subset, so
  the orientation is found from which axis has 12 bins, never from the subset.
* frames are hop 512 at 44.1 kHz unless the root attribute ``hop_length``
  (written by coversearch's generator for coarse data) says otherwise.
* some real features contain NaN/inf; they are replaced by 0 and counted.
* root attributes ``label`` (work id) and ``track_id`` (performance id) are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from coversearch.config import DATASET_OF_FEATURE, DEFAULT_HOP
from coversearch.errors import ConfigError, DataError


@dataclass(frozen=True)
class Chroma:
    """A chroma sequence read from a file.

    Attributes:
        frames: (T, 12) float32, finite.
        hop: frame hop in samples at 44.1 kHz.
        n_nonfinite: how many NaN/inf values were replaced by 0.
        work_id: root attribute ``label`` (None if absent).
        perf_id: root attribute ``track_id`` (None if absent).
    """

    frames: np.ndarray
    hop: int
    n_nonfinite: int
    work_id: str | None
    perf_id: str | None


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


def to_time_major(array: np.ndarray, *, name: str = "array") -> np.ndarray:
    """Return a (T, 12) view of a chroma array stored as (T, 12) or (12, T).

    Raises:
        DataError: no axis has 12 bins, or the array is not 2-D.
    """
    if array.ndim != 2:
        raise DataError(f"{name}: expected a 2-D chroma array, got shape {array.shape}")
    if array.shape[1] == 12:
        return array
    if array.shape[0] == 12:
        return array.T
    raise DataError(f"{name}: no 12-bin axis in shape {array.shape}")


def load_chroma(path: str | Path, feature: str = "hpcp") -> Chroma:
    """Load one chroma feature of one performance.

    Works on per-feature files and on single files alike (the dataset name is
    the same in both).

    Args:
        path: an h5 file.
        feature: ``hpcp``, ``crema`` or ``cens``.

    Returns:
        A ``Chroma`` with (T, 12) float32 frames.

    Raises:
        DataError: missing, truncated or corrupt file; no such dataset; no
            12-bin axis; an empty sequence.
    """
    if feature not in DATASET_OF_FEATURE:
        raise ConfigError(f"unknown feature {feature!r}: choose one of {', '.join(DATASET_OF_FEATURE)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    dname = DATASET_OF_FEATURE[feature]
    try:
        with h5py.File(path, "r") as h:
            if dname not in h or not isinstance(h[dname], h5py.Dataset):
                have = ", ".join(sorted(h.keys())) or "nothing"
                raise DataError(f"{path}: no '{dname}' dataset (file has: {have})")
            raw = h[dname][()]
            hop = int(h.attrs.get("hop_length", DEFAULT_HOP))
            work_id = _text(h.attrs.get("label"))
            perf_id = _text(h.attrs.get("track_id"))
    except DataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: corrupt or unreadable HDF5 file ({msg})") from None
    if not np.issubdtype(raw.dtype, np.number):
        raise DataError(f"{path}: '{dname}' is not numeric (dtype {raw.dtype})")
    frames = to_time_major(np.asarray(raw), name=f"{path}: '{dname}'")
    if frames.shape[0] == 0:
        raise DataError(f"{path}: '{dname}' is an empty sequence (0 frames)")
    if hop <= 0:
        raise DataError(f"{path}: invalid hop_length attribute {hop}")
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    bad = ~np.isfinite(frames)
    n_bad = int(bad.sum())
    if n_bad:
        frames[bad] = 0.0
    return Chroma(frames=frames, hop=hop, n_nonfinite=n_bad, work_id=work_id, perf_id=perf_id)


def load_key(path: str | Path) -> tuple[str, str, float] | None:
    """Return (key, scale, strength) from a ``key_extractor`` group, or None."""
    try:
        with h5py.File(path, "r") as h:
            if "key_extractor" not in h:
                return None
            a = h["key_extractor"].attrs
            return _text(a.get("key")), _text(a.get("scale")), float(a.get("strength", np.nan))
    except OSError as e:
        raise DataError(f"{path}: corrupt or unreadable HDF5 file ({e})") from None
