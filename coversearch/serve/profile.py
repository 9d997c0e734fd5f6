"""A query's distance profile: the cosine distances of its work's other
versions against the distribution of the rest of the catalogue (the page's
small figure; also ``?profile=true`` on the query endpoints)."""

from __future__ import annotations

import numpy as np

# above this many items the rest's histogram is drawn from a fixed-seed sample
SAMPLE = 200_000
BINS = 40


def distance_profile(snap, vector, work_id: str | None, *, exclude_row: int | None = None,
                     bins: int = BINS, sample: int = SAMPLE) -> dict:
    """Distances of a query to its versions (exact) and to the rest (histogram).

    Args:
        snap: the serving :class:`~coversearch.serve.holder.Snapshot`.
        vector: (D,) float32 unit query vector.
        work_id: the query's work (its versions are the other items of that
            work), or None when unknown (an audio upload).
        exclude_row: the query's own row (a query by id), left out of both.
        bins: histogram bins over [0, max distance].
        sample: at most this many rows for the rest's histogram.

    Returns:
        ``{"work_id", "versions": [{perf_id, distance}] (ascending),
        "rest": {"edges": [bins + 1], "counts": [bins], "n": int, "sampled": bool}}``
        with distance = 1 - cosine.
    """
    vectors = snap.bundle.vectors  # (N, D) float32, memory-mapped
    n = vectors.shape[0]
    q = np.asarray(vector, np.float32).reshape(-1)
    vrows = snap.work_rows.get(str(work_id), np.zeros(0, np.int64)) if work_id else np.zeros(0, np.int64)
    if exclude_row is not None:
        vrows = vrows[vrows != exclude_row]
    vd = 1.0 - np.asarray(vectors[vrows], np.float32) @ q if len(vrows) else np.zeros(0, np.float32)
    ids = snap.catalogue.columns["perf_id"]
    versions = sorted(({"perf_id": ids[int(r)], "distance": float(d)} for r, d in zip(vrows, vd)),
                      key=lambda x: x["distance"])
    if n > sample:
        rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
        d = 1.0 - np.asarray(vectors[rows], np.float32) @ q
    else:
        rows = np.arange(n)
        d = 1.0 - np.asarray(vectors, np.float32) @ q
    keep = ~np.isin(rows, vrows)
    if exclude_row is not None:
        keep &= rows != exclude_row
    rest = d[keep]
    top = float(max(rest.max() if rest.size else 0.0, vd.max() if vd.size else 0.0, 1e-6))
    counts, edges = np.histogram(rest, bins=bins, range=(0.0, top))
    return {"work_id": work_id, "versions": versions,
            "rest": {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist(), "n": int(rest.size),
                     "sampled": bool(n > sample)}}
