"""The items table (Parquet): row i describes FAISS id i.

Required columns ``perf_id`` and ``work_id`` (strings); optional metadata
columns (work_title, work_artist, perf_title, perf_artist, release_year,
instrumental, subset, path, ...) are stored as given -- a column whose values
pyarrow cannot type consistently (e.g. ints mixed with "") is stored as strings.
"""

from __future__ import annotations

import os
from pathlib import Path

from coversearch._io import atomic_path
from coversearch.errors import IndexMismatchError

REQUIRED = ("perf_id", "work_id")


def _column(name: str, values: list):
    import pyarrow as pa

    if name in REQUIRED:
        return pa.array(["" if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(list(values))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(["" if v is None else str(v) for v in values], type=pa.string())


def make_table(columns: dict[str, list]):
    """Build the items table from equal-length columns.

    Raises:
        ValueError: a required column is missing or lengths differ.
    """
    import pyarrow as pa

    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"items table needs columns {missing}")
    lengths = {name: len(v) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"items columns differ in length: {lengths}")
    names = list(REQUIRED) + [c for c in columns if c not in REQUIRED]
    return pa.table({name: _column(name, columns[name]) for name in names})


def write_items(path: str | os.PathLike, columns: dict[str, list]) -> int:
    """Write the items table to ``path`` atomically; return the row count."""
    import pyarrow.parquet as pq

    table = make_table(columns)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return table.num_rows


def read_items(path: str | os.PathLike):
    """Read the items table.

    Returns:
        pyarrow.Table with at least ``perf_id`` and ``work_id``.

    Raises:
        IndexMismatchError: missing, unreadable, or without the required columns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise IndexMismatchError(f"missing items table {path}")
    try:
        # ParquetFile avoids importing pyarrow.dataset (~85 ms of a query process)
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as e:
        raise IndexMismatchError(f"cannot read items table {path}: {str(e).splitlines()[0]}") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise IndexMismatchError(f"items table {path} lacks columns {missing}")
    return table
