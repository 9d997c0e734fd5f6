"""Where Da-TACOS files live: auto-detect the layout of a data root.

Da-TACOS (Yesiler et al., ISMIR 2019; MTG, CC BY-NC-SA 4.0) ships per-feature
folders ``da-tacos_{subset}_subset_{feat}/W_x_{feat}/P_y_{feat}.h5`` and
single files ``da-tacos_{subset}_subset_single_files/W_x/P_y.h5``, with
metadata in ``da-tacos_metadata/da-tacos_{subset}_subset_metadata.json``.
A root may hold either layout or both, for one or both subsets; when both
layouts hold a feature, the per-feature folder is used (it is smaller to read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from coversearch.config import FEATURES, SUBSETS
from coversearch.errors import ConfigError, DataError

_FEAT_DIR = re.compile(r"^da-tacos_(benchmark|coveranalysis)_subset_(\w+)$")
_PERF_FILE = re.compile(r"^(P_\d+)(?:_(\w+))?\.h5$")


@dataclass(frozen=True)
class PerfEntry:
    """One performance file to read.

    Attributes:
        perf_id: ``P_<int>`` taken from the file name.
        work_id: ``W_<int>`` taken from the work folder name.
        subset: ``benchmark`` or ``coveranalysis``.
        layout: ``per-feature`` or ``single-files``.
        path: the h5 file.
    """

    perf_id: str
    work_id: str
    subset: str
    layout: str
    path: Path


def _feature_folders(root: Path) -> list[Path]:
    if _FEAT_DIR.match(root.name):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _FEAT_DIR.match(p.name))


def find_performances(root: str | Path, feature: str, subset: str | None = None) -> list[PerfEntry]:
    """List every performance file holding ``feature`` under a Da-TACOS root.

    Args:
        root: a folder holding ``da-tacos_*_subset_*`` folders (or one of them).
        feature: one of ``hpcp``, ``crema``, ``cens``.
        subset: restrict to ``benchmark`` or ``coveranalysis``; None = all found.

    Returns:
        Entries sorted by (subset, work id, perf id); each performance once.

    Raises:
        DataError: the root is missing or holds no Da-TACOS folder for ``feature``.
    """
    if feature not in FEATURES:
        raise ConfigError(f"unknown feature {feature!r}: choose one of {', '.join(FEATURES)}")
    if subset is not None and subset not in SUBSETS:
        raise ConfigError(f"unknown subset {subset!r}: choose one of {', '.join(SUBSETS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    found: dict[str, PerfEntry] = {}
    folders = _feature_folders(root)
    # per-feature folders first so they win over single files
    order = sorted(folders, key=lambda p: p.name.endswith("_single_files"))
    for folder in order:
        sub, kind = _FEAT_DIR.match(folder.name).groups()
        if subset and sub != subset:
            continue
        if kind == "single_files":
            layout = "single-files"
        elif kind == feature:
            layout = "per-feature"
        else:
            continue
        for wdir in sorted(folder.iterdir()):
            if not wdir.is_dir() or not wdir.name.startswith("W_"):
                continue
            work_id = wdir.name[: -len(f"_{feature}")] if layout == "per-feature" else wdir.name
            if layout == "per-feature" and not wdir.name.endswith(f"_{feature}"):
                continue
            for f in wdir.iterdir():
                m = _PERF_FILE.match(f.name)
                if not m:
                    continue
                perf_id, suffix = m.groups()
                if layout == "per-feature" and suffix != feature:
                    continue
                if perf_id not in found:
                    found[perf_id] = PerfEntry(perf_id, work_id, sub, layout, f)
    if not found:
        raise DataError(
            f"not a Da-TACOS folder: {root} holds no da-tacos_*_subset_{feature}/ or "
            f"*_single_files/ performance files"
        )
    return sorted(found.values(), key=lambda e: (e.subset, _num(e.work_id), _num(e.perf_id)))


def _num(ident: str) -> int:
    try:
        return int(ident.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def metadata_paths(root: str | Path) -> list[Path]:
    """Metadata JSON files under ``root/da-tacos_metadata`` (may be empty)."""
    meta = Path(root) / "da-tacos_metadata"
    return sorted(meta.glob("da-tacos_*_subset_metadata.json")) if meta.is_dir() else []
