"""The order of the steps: read -> prepare (cache) -> embed -> index -> query /
evaluate. Every CLI verb is one public function here, and tests call them
directly. Heavy modules (torch, faiss) are imported inside the functions that
need them, so a query by id never imports torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from coversearch.config import DEFAULT_FEATURE, PREPARED_HOP
from coversearch.errors import ConfigError, DataError, UnknownIdError

DEFAULT_INDEX_DIR = Path("indexes") / "default"


def default_demo_dir() -> Path:
    """Where the embedded default's synthetic demo data is generated."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "coversearch" / "demo-data"


def ensure_demo_data(path: str | Path | None = None, *, progress: bool = True, log=print) -> Path:
    """Generate the demo profile (seed 0) at ``path`` unless it is already there."""
    path = Path(path) if path else default_demo_dir()
    marker = path / ".coversearch-synth.json"
    if marker.is_file():
        return path
    from coversearch.data.synth import generate

    log(f"generating the synthetic demo data set in {path} (one time)")
    generate(path, profile="demo", seed=0, jobs=min(2, os.cpu_count() or 1), progress=progress)
    return path


def prepare_data(data, feature, *, jobs=2, skip_bad=False, progress=True, cache_path=None, subset=None, log=print):
    """Build or reuse the prepared cache of a data root; report skipped files."""
    from coversearch.features.cache import build_cache

    cache, report = build_cache(
        data, feature, subset=subset, cache_path=cache_path, jobs=jobs, skip_bad=skip_bad, progress=progress
    )
    if report.bad:
        log(f"skipped {len(report.bad)} unreadable file(s):")
        for _, msg in report.bad:
            log(f"  {msg}")
    if report.n_nonfinite:
        log(f"note: replaced {report.n_nonfinite} NaN/inf values by 0")
    return cache, report


def build_index(
    data: str | Path | None = None,
    *,
    model: str | Path | None = None,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    index_type: str = "auto",
    feature: str | None = None,
    subset: str | None = None,
    jobs: int = 2,
    skip_bad: bool = False,
    batch_size: int = 32,
    progress: bool = True,
    log=print,
) -> dict:
    """Embed every performance under ``data`` and write the index folder atomically.

    Args:
        data: Da-TACOS root; None = the embedded default (demo data, generated if absent).
        model: checkpoint ``.pt``; None = the shipped encoder.
        index_dir: destination folder (replaced only when the new one is complete).
        index_type: ``auto``, ``flat``, ``hnsw`` or ``ivfpq``.
        feature: chroma feature; None = the one the model was trained on.
        subset: only ``benchmark`` or ``coveranalysis``; None = all found.
        jobs: reader processes for the cache.
        skip_bad: skip unreadable files instead of stopping at the first.

    Returns:
        Summary dict (counts, seconds per stage, manifest).
    """
    from coversearch.data.metadata import load_metadata
    from coversearch.index.bundle import write_bundle
    from coversearch.index.choose import choose_index
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    t0 = time.perf_counter()
    source = Path(data) if data else ensure_demo_data(progress=progress, log=log)
    net, info = load_checkpoint(model)
    feature = feature or info["config"].feature
    cache, report = prepare_data(source, feature, jobs=jobs, skip_bad=skip_bad, progress=progress, subset=subset, log=log)
    t1 = time.perf_counter()
    vectors = embed_sequences(net, cache.sequences(), batch_size=batch_size, progress=progress)
    t2 = time.perf_counter()
    meta = load_metadata(source)
    cols = {"perf_id": cache.perf_ids, "work_id": cache.work_ids, "subset": cache.subsets}
    for field in ("work_title", "work_artist", "perf_title", "perf_artist", "release_year", "instrumental"):
        cols[field] = [meta.get(p, {}).get(field, "") for p in cache.perf_ids]
    cols["path"] = cache.paths
    spec = choose_index(len(vectors), vectors.shape[1], kind=index_type)
    manifest = write_bundle(
        index_dir,
        vectors,
        cols,
        spec=spec,
        manifest_fields={
            "model_hash": info["model_hash"],
            "model_name": Path(info["path"]).name,
            "feature": feature,
            "hop": PREPARED_HOP,
            "dim": int(vectors.shape[1]),
            "source": str(Path(source).resolve()),
            "extra": {"cache": str(cache.path), "skipped": [p for p, _ in report.bad]},
        },
    )
    t3 = time.perf_counter()
    return {
        "index_dir": str(index_dir),
        "count": len(vectors),
        "skipped": len(report.bad),
        "seconds": {"prepare": round(t1 - t0, 2), "embed": round(t2 - t1, 2), "index": round(t3 - t2, 2)},
        "manifest": manifest,
    }


def query(
    perf_id: str | None = None,
    *,
    file: str | Path | None = None,
    k: int = 10,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    model: str | Path | None = None,
) -> dict:
    """The ``k`` nearest performances to an indexed id, or to a file not in the index.

    Returns:
        {"query": {...}, "results": [{rank, perf_id, work_id, work_title, perf_artist,
        ..., distance, same_work}]} with cosine distance = 1 - cosine.

    Raises:
        UnknownIdError: ``perf_id`` not in the index (with suggestions).
        IndexMismatchError: missing index, or ``file`` embedded by another model.
    """
    import numpy as np

    from coversearch.index.bundle import load_bundle

    if (perf_id is None) == (file is None):
        raise ConfigError("give either a performance id or --file, not both")
    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    bundle = load_bundle(index_dir)
    items = bundle.items
    work_col = items.column("work_id").to_pylist()
    if perf_id is not None:
        row = bundle.row_of(perf_id)
        vec = np.asarray(bundle.vector_of(perf_id), np.float32)[None]
        qinfo = {"perf_id": perf_id, "work_id": work_col[row], "row": row}
        exclude = [row]
    else:
        vec, qinfo = _embed_file(file, bundle, model)
        exclude = []
        row = None
    scores, rows = bundle.search(vec, k, exclude_rows=exclude)
    names = items.column_names
    results = []
    for rank, (s, r) in enumerate(zip(scores[0], rows[0]), start=1):
        if r < 0:
            continue
        rec = {c: items.column(c)[int(r)].as_py() for c in names if c != "path"}
        rec.update(rank=rank, row=int(r), distance=float(1.0 - s), same_work=rec["work_id"] == qinfo.get("work_id"))
        results.append(rec)
    return {"query": qinfo, "results": results, "index_dir": str(index_dir)}


def _embed_file(file, bundle, model):
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    net, info = load_checkpoint(model)
    bundle.check_model(info["model_hash"], net.config.dim)
    feature = bundle.manifest.feature
    c = load_chroma(file, feature)
    vec = embed_sequences(net, [prepare(c.frames, c.hop)])
    return vec, {"file": str(file), "perf_id": c.perf_id, "work_id": c.work_id}


def evaluate(index_dir: str | Path = DEFAULT_INDEX_DIR, *, k: int = 10, block: int = 1024, progress: bool = True) -> dict:
    """All-against-all retrieval metrics of an index (each query excluded from its own list)."""
    import numpy as np

    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.index.bundle import load_bundle

    bundle = load_bundle(index_dir, load_index=False)
    labels = np.array(bundle.items.column("work_id").to_pylist())
    m = retrieval_metrics(np.asarray(bundle.vectors, np.float32), labels, k=k, block=block, progress=progress)
    m = {key: v for key, v in m.items() if not isinstance(v, np.ndarray)}
    m["index_dir"] = str(index_dir)
    m["model_hash"] = bundle.manifest.model_hash
    m["source"] = bundle.manifest.source
    return m


def train(
    data: str | Path,
    out: str | Path,
    *,
    feature: str = DEFAULT_FEATURE,
    subset: str | None = None,
    encoder_config=None,
    train_config=None,
    jobs: int = 2,
    skip_bad: bool = False,
    progress: bool = True,
    log=print,
) -> dict:
    """Train an encoder on the data under ``data`` and save it to ``out``."""
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.model.config import EncoderConfig, TrainConfig
    from coversearch.model.train import train as train_loop

    encoder_config = encoder_config or EncoderConfig(feature=feature)
    train_config = train_config or TrainConfig()
    cache, _ = prepare_data(data, feature, jobs=jobs, skip_bad=skip_bad, progress=progress, subset=subset, log=log)
    return train_loop(
        cache,
        out,
        encoder_config=encoder_config,
        train_config=train_config,
        metric_fn=lambda v, y: retrieval_metrics(v, y),
        source=str(Path(data).resolve()),
        progress=progress,
        log=log,
    )


__all__ = ["build_index", "query", "evaluate", "train", "ensure_demo_data", "prepare_data", "DataError", "UnknownIdError"]
