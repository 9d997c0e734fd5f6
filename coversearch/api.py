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
    from coversearch.synth import generate

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
    batch_size: int = 8,
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
    from coversearch.rerank import RerankConfig

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
        sequences=cache.sequences(),  # re-ranking reads the index's own copy, never the source
        json_files={RERANK_FILE: {"config": RerankConfig().to_dict(), "chosen_by": "defaults"}},
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
    rerank: bool = False,
    shortlist: int | None = None,
    jobs: int = 1,
    bundle=None,
    with_vector: bool = False,
) -> dict:
    """The ``k`` nearest performances to an indexed id, or to a file not in the index.

    With ``rerank``, the ``shortlist`` (K1) nearest by cosine (default: the
    index's ``rerank.json`` rule, 2% of the catalogue, at least 200) are
    re-ordered by the alignment cascade (:func:`coversearch.rerank.score_query`);
    the eligible items never change, only their order. ``jobs``: cores.

    ``bundle`` is an index already loaded from ``index_dir`` (the HTTP server
    keeps one in memory and swaps it whole on reload); ``with_vector`` adds the
    query's unit vector as ``query_vector`` (the server's distance profile).

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
    bundle = bundle if bundle is not None else load_bundle(index_dir)
    items = bundle.items
    if perf_id is not None:
        row = bundle.row_of(perf_id)
        vec = np.asarray(bundle.vector_of(perf_id), np.float32)[None]
        qinfo = {"perf_id": perf_id, "work_id": items.column("work_id")[row].as_py(), "row": row}
        exclude = [row]
        qseq = None
    else:
        vec, qinfo, qseq = _embed_file(file, bundle, model)
        exclude = []
    fused = stage = None
    if rerank:
        from coversearch.rerank import score_query

        cfg = load_rerank_config(bundle)
        store = bundle.sequences()
        k1 = max(k, shortlist or cfg.first_stage_k(bundle.count - len(exclude)))
        scores, rows = bundle.search(vec, k1, exclude_rows=exclude)
        if qseq is None:
            qseq = store.sequence(row)
        r = score_query(rows[0], scores[0], qseq, store, config=cfg, jobs=jobs)
        rows = r.rows[None, :k]
        scores = r.cosine[None, :k].astype(np.float32)
        fused, stage = r.score[:k], r.stage[:k]
        qinfo["rerank"] = {"shortlist": int(k1), "fine": cfg.fine, "weight": cfg.weight, "norm": cfg.norm}
    else:
        scores, rows = bundle.search(vec, k, exclude_rows=exclude)
    names = items.column_names
    results = []
    for rank, (s, r) in enumerate(zip(scores[0], rows[0]), start=1):
        if r < 0:
            continue
        rec = {c: items.column(c)[int(r)].as_py() for c in names if c != "path"}
        rec.update(rank=rank, row=int(r), distance=float(1.0 - s), same_work=rec["work_id"] == qinfo.get("work_id"))
        if fused is not None:
            rec["fused_score"] = float(fused[rank - 1])
            rec["rerank_stage"] = str(stage[rank - 1])
        results.append(rec)
    out = {"query": qinfo, "results": results, "index_dir": str(index_dir)}
    if with_vector:
        out["query_vector"] = vec[0].tolist()
    return out


RERANK_FILE = "rerank.json"


def load_rerank_config(index):
    """The re-rank settings of an index: its ``rerank.json`` (hash-checked
    against the manifest), else the defaults.

    Args:
        index: an index folder or a loaded ``Bundle``.

    Raises:
        IndexMismatchError: rerank.json changed since it was listed.
        ConfigError: unreadable settings.
    """
    from coversearch.index.bundle import Bundle, load_bundle, read_json_file
    from coversearch.rerank import RerankConfig

    bundle = index if isinstance(index, Bundle) else load_bundle(index, load_index=False)
    d = read_json_file(bundle, RERANK_FILE)
    if d is None:
        return RerankConfig()
    try:
        return RerankConfig.from_dict(d["config"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{bundle.path / RERANK_FILE}: unreadable re-rank settings ({e}); "
                          "run `coversearch tune-rerank` or rebuild the index") from None


def _cache_of(bundle):
    """The prepared cache an index was built from (``adapt`` trains on it; re-ranking reads the index's own copy)."""
    from coversearch.errors import IndexMismatchError
    from coversearch.features.cache import PreparedCache

    path = (bundle.manifest.extra or {}).get("cache")
    if not path or not Path(path).is_file():
        raise IndexMismatchError(f"{bundle.path}: its prepared cache {path} is gone; rebuild with `coversearch build-index`")
    cache = PreparedCache(path)
    ids = bundle.items.column("perf_id").to_pylist()
    if cache.perf_ids != ids:
        raise IndexMismatchError(f"{bundle.path}: prepared cache {path} changed since the index was built; rebuild the index")
    return cache


def _embed_file(file, bundle, model):
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    net, info = load_checkpoint(model or bundle.own_model())  # an adapted index carries its model
    bundle.check_model(info["model_hash"], net.config.dim)
    feature = bundle.manifest.feature
    c = load_chroma(file, feature)
    seq = prepare(c.frames, c.hop)
    vec = embed_sequences(net, [seq])
    return vec, {"file": str(file), "perf_id": c.perf_id, "work_id": c.work_id}, seq


def evaluate(
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    k: int = 10,
    block: int = 1024,
    progress: bool = True,
    rerank: bool = False,
    shortlist: int | None = None,
    max_queries: int | None = None,
    jobs: int = 1,
    rerank_config=None,
) -> dict:
    """All-against-all retrieval metrics of an index (each query excluded from its own list).

    With ``rerank``, each query's cosine shortlist is re-ordered by the
    cascade (the index's ``rerank.json``, or ``rerank_config``, a
    ``RerankConfig``) and the rest of the ranking stays in cosine order;
    ``max_queries`` evaluates a fixed, seeded sample of the queries that have
    a version in the index. ``recall_at_k`` is always the first stage's.
    """
    import numpy as np

    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.index.bundle import load_bundle

    bundle = load_bundle(index_dir, load_index=False)
    labels = np.array(bundle.items.column("work_id").to_pylist())
    vectors = np.asarray(bundle.vectors, np.float32)
    if rerank or max_queries:
        m = _evaluate_queries(bundle, vectors, labels, index_dir, rerank=rerank, shortlist=shortlist,
                              max_queries=max_queries, jobs=jobs, progress=progress, config=rerank_config)
    else:
        m = retrieval_metrics(vectors, labels, k=k, block=block, progress=progress)
    m = {key: v for key, v in m.items() if not isinstance(v, np.ndarray)}
    m["rerank"] = bool(rerank)
    m["index_dir"] = str(index_dir)
    m["model_hash"] = bundle.manifest.model_hash
    m["source"] = bundle.manifest.source
    return m


def _evaluate_queries(bundle, vectors, labels, index_dir, *, rerank, shortlist, max_queries, jobs, progress,
                      config=None, block: int = 256):
    """Metrics over a (sampled) set of queries, optionally re-ranked; all items stay
    candidates. Scores are ranked a block of queries at a time (memory O(block * N))."""
    import time

    import numpy as np

    from coversearch.evaluate.retrieval import RECALL_FRACTIONS, metrics_from_scores, summarise

    t0 = time.perf_counter()
    _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    candidates = np.flatnonzero(counts[inv] >= 2)
    if max_queries and max_queries < len(candidates):
        candidates = np.sort(np.random.default_rng(0).choice(candidates, max_queries, replace=False))
    # evaluate checks the full sha256 of the stored sequences (a query checks sizes)
    store = bundle.sequences(verify_hashes=True) if rerank else None
    cfg = (config or load_rerank_config(bundle)) if rerank else None
    kk = (shortlist or cfg.first_stage_k(len(labels) - 1)) if rerank else 0
    from tqdm import tqdm

    from coversearch.rerank import cosine_shortlist, reranked_full_scores, score_query

    bar = tqdm(total=len(candidates), desc="re-ranking" if rerank else "scoring", disable=not progress)
    parts = []
    for start in range(0, len(candidates), block):
        rows_q = candidates[start : start + block]
        scores = (vectors[rows_q] @ vectors.T).astype(np.float64)  # (B, N)
        # recall at K is the first stage's (cosine) ceiling, measured before re-ranking
        first = metrics_from_scores(scores, labels[rows_q], labels, query_rows=rows_q, per_query=True,
                                    recall_fractions=RECALL_FRACTIONS)["per_query"]
        if rerank:
            for i, q in enumerate(rows_q):
                short = cosine_shortlist(scores[i], int(q), kk)
                r = score_query(short, scores[i, short], store.sequence(int(q)), store, config=cfg, jobs=jobs)
                scores[i] = reranked_full_scores(scores[i], r.rows)
                bar.update(1)
        else:
            bar.update(len(rows_q))
        part = first if not rerank else \
            metrics_from_scores(scores, labels[rows_q], labels, query_rows=rows_q, per_query=True)["per_query"]
        part["recall"] = first["recall"]
        parts.append(part)
    bar.close()
    per_query = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else \
        {key: np.zeros(0) for key in ("ap", "r1", "p_at_k", "p_at_10", "n_rel")} | \
        {"recall": np.zeros((0, len(RECALL_FRACTIONS)))}
    m = summarise(per_query, n_items=len(labels), seconds=time.perf_counter() - t0,
                  recall_fractions=RECALL_FRACTIONS)
    m["seconds_per_query"] = m["seconds"] / max(1, len(candidates))
    if rerank:
        m["shortlist"] = int(kk)
        m["rerank_config"] = cfg.to_dict()
    return m


def tune_rerank(
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    val_data: str | Path,
    model: str | Path | None = None,
    n_queries: int = 150,
    shortlists=(50, 100, 200),
    jobs: int = 1,
    progress: bool = True,
    log=print,
) -> dict:
    """Choose the re-rank fusion weight, normalisation and K2 (``shortlists``:
    the sizes of the full-alignment pass tried) on validation works
    (``val_data``, never the indexed set) and store them as the index's
    ``rerank.json`` (listed in its manifest).

    The validation set is embedded with the index's model; ``n_queries``
    seeded queries with a version in it are aligned once against their K1
    shortlist at both rates (:func:`coversearch.rerank.tune.tune_on_validation`).
    """
    import numpy as np

    from coversearch.index.bundle import load_bundle, replace_json_file
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.rerank.tune import tune_on_validation

    bundle = load_bundle(index_dir, load_index=False)
    net, info = load_checkpoint(model or bundle.own_model())
    bundle.check_model(info["model_hash"], net.config.dim)
    if Path(val_data).resolve() == Path(bundle.manifest.source).resolve():
        raise ConfigError("tune-rerank needs validation data other than the indexed set (--val-data)")
    cache, _ = prepare_data(val_data, bundle.manifest.feature, progress=progress, log=log)
    vec = embed_sequences(net, cache.sequences(), progress=progress)
    out = tune_on_validation(vec, np.array(cache.work_ids), cache.sequence, base=load_rerank_config(bundle),
                             n_queries=n_queries, fine_sizes=tuple(shortlists), jobs=jobs, log=log)
    out["validation"]["data"] = str(Path(val_data).resolve())
    out["chosen_by"] = "tune-rerank"
    replace_json_file(index_dir, RERANK_FILE, out)
    return out


def train(
    data: str | Path | None,
    out: str | Path | None,
    *,
    feature: str = DEFAULT_FEATURE,
    subset: str | None = None,
    encoder_config=None,
    train_config=None,
    jobs: int = 2,
    skip_bad: bool = False,
    init_from: str | Path | None = None,
    progress: bool = True,
    log=print,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
) -> dict:
    """Train (or, with ``init_from``, fine-tune) an encoder on the data under ``data``; save it to ``out``.

    ``run_dir`` keeps a resumable run folder (config, history, best and last
    checkpoints); ``resume`` = such a folder continues its run (its stored
    data source, output path and configs; ``data`` and ``out`` may be None).
    """
    import json

    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.model.config import EncoderConfig, TrainConfig
    from coversearch.model.train import CONFIG, train as train_loop

    if resume:
        cfg_path = Path(resume) / CONFIG
        if not cfg_path.is_file():
            raise ConfigError(f"{resume} is not a training run folder (no {CONFIG})")
        stored = json.loads(cfg_path.read_text())
        data, out, run_dir = data or stored["source"], out or stored["out"], resume
        feature = stored["encoder_config"]["feature"]
    if data is None or out is None:
        raise ConfigError("train needs --data and --out (or --resume RUN_DIR)")
    encoder_config = encoder_config or EncoderConfig(feature=feature)
    train_config = train_config or TrainConfig()
    cache, _ = prepare_data(data, feature, jobs=jobs, skip_bad=skip_bad, progress=progress, subset=subset, log=log)
    rec = train_loop(
        cache,
        out,
        encoder_config=encoder_config,
        train_config=train_config,
        metric_fn=lambda v, y: retrieval_metrics(v, y),
        source=str(Path(data).resolve()),
        init_from=init_from,
        progress=progress,
        log=log,
        run_dir=run_dir,
        resume=bool(resume),
    )
    return rec | {"out": str(out)}


def adapt(
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    out_index_dir: str | Path | None = None,
    out_model: str | Path | None = None,
    model: str | Path | None = None,
    rounds: int = 1,
    mine=None,
    train=None,
    jobs: int = 2,
    progress: bool = True,
    log=print,
) -> dict:
    """Adapt the index's encoder to its own catalogue without labels and write
    the re-embedded index (``out_index_dir``, default: in place, swapped in
    only when complete); see :mod:`coversearch.adapt`. Never reads work ids.
    """
    from coversearch.adapt.run import adapt_index
    from coversearch.index.bundle import load_bundle

    bundle = load_bundle(index_dir, load_index=False)
    return adapt_index(bundle, _cache_of(bundle), out_index_dir or index_dir, model=model, out_model=out_model,
                       rounds=rounds, jobs=jobs, progress=progress, log=log,
                       **{k: v for k, v in (("mine", mine), ("train", train)) if v is not None})


__all__ = ["build_index", "query", "evaluate", "train", "report", "adapt", "ensure_demo_data", "prepare_data", "DataError", "UnknownIdError"]


def report(
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    out: str | Path | None = None,
    json_path: str | Path | None = None,
    model: str | Path | None = None,
    kmeans: bool = True,
    command: str = "",
) -> dict:
    """Write the HTML report of an index (``out/report.html``, default ``reports/<index name>``)
    and optionally its numbers as JSON; see :mod:`coversearch.report`."""
    from coversearch.report import write_report

    out = Path(out) if out else Path("reports") / Path(index_dir).resolve().name
    return write_report(index_dir, out, json_path=json_path, model=model, kmeans=kmeans, command=command)
