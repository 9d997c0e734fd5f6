"""The order of the steps: read -> prepare (cache) -> embed -> index -> query /
evaluate. Every CLI verb is one public function here, and tests call them
directly. Heavy modules (torch, faiss) are imported inside the functions that
need them, so a query by id never imports torch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from coversearch.config import DEFAULT_FEATURE, PREPARED_HOP, at_least
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
    from coversearch.features.cache import build_cache, log_read_report

    cache, report = build_cache(
        data, feature, subset=subset, cache_path=cache_path, jobs=jobs, skip_bad=skip_bad, progress=progress
    )
    log_read_report(report.bad, report.n_nonfinite, log)
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
    audio: str | Path | None = None,
    features_dir: str | Path | None = None,
    works: str | Path | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    ray_timeout: float | None = None,
    shard_dir: str | Path | None = None,
    store: str = "faiss",
    milvus_uri: str | None = None,
    milvus_collection: str | None = None,
) -> dict:
    """Embed every performance under ``data`` and write the index folder atomically.

    Args:
        data: Da-TACOS root; None = the embedded default (demo data, generated if absent).
        audio: a folder of audio files instead of ``data``: extracted
            (``extract_audio``; with ``engine="ray"`` inside the Ray pipeline)
            into ``features_dir`` (default ``audio_features_dir(audio)``),
            which is then indexed as ``data``. Unusable audio files count as
            skipped (``skip_bad``), listed in the manifest like unreadable h5.
        works: with ``audio``: a ``path,work_id`` CSV grouping files into works (as ``extract --works``).
        model: checkpoint ``.pt``; None = the shipped encoder.
        index_dir: destination folder (replaced only when the new one is complete).
        index_type: ``auto``, ``flat``, ``hnsw`` or ``ivfpq``.
        feature: chroma feature; None = the one the model was trained on.
        subset: only ``benchmark`` or ``coveranalysis``; None = all found.
        jobs: reader processes for the cache.
        skip_bad: skip unreadable files instead of stopping at the first.
        engine: ``local`` (prepared cache + in-process encoder) or ``ray``
            (a Ray Data pipeline, :mod:`coversearch.scale.ray_build`; same items and vectors).
        ray_address: with ``ray``: an existing cluster; None = start a local Ray (2 CPUs).
        ray_timeout: with ``ray``: seconds for the whole job (default 24 h).
        shard_dir: with ``ray``: where the Parquet shards go (default beside ``index_dir``).
        store: ``faiss`` (index.faiss in the folder) or ``milvus`` (a collection at ``milvus_uri``).
        milvus_uri, milvus_collection: the Milvus server URI or Lite ``.db`` path; collection base name.

    Returns:
        Summary dict (counts, seconds per stage, manifest).
    """
    from coversearch.data.metadata import load_metadata
    from coversearch.index.bundle import write_bundle
    from coversearch.index.choose import choose_index
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.index.store import StoreConfig

    at_least("--jobs", jobs)
    at_least("batch_size", batch_size)
    if engine not in ("local", "ray"):
        raise ConfigError(f"unknown --engine {engine!r}; choose local or ray")
    if engine == "local" and (ray_address or shard_dir):
        raise ConfigError("--ray-address/--shard-dir need --engine ray")
    store_cfg = StoreConfig(store, milvus_uri or "", milvus_collection or "")
    t0 = time.perf_counter()
    if data is not None and audio is not None:
        raise ConfigError("give --data (Da-TACOS features) or --audio (audio files), not both")
    if works is not None and audio is None:
        raise ConfigError("--works groups audio files: it needs --audio")
    source = Path(data) if data else None if audio else ensure_demo_data(progress=progress, log=log)
    net, info = load_checkpoint(model)
    feature = feature or info["config"].feature
    audio_bad: list = []
    if audio is not None:
        source = Path(features_dir) if features_dir else audio_features_dir(audio)
        _audio_feature(feature)
        if engine == "local":
            log(f"extracting {feature} of the audio under {audio} into {source}")
            ex = extract_audio([audio], source, features=(feature,), works=works, jobs=jobs, skip_bad=skip_bad,
                               progress=progress, log=log)
            audio_bad = ex["bad"]
            audio_extra = {"extract": {"extracted": ex["extracted"], "unchanged": ex["unchanged"],
                                       "skipped": len(ex["bad"])}}
    if engine == "ray" and audio is not None:
        from coversearch.scale.ray_build import build_vectors_audio

        vectors, base, bad, extra, secs, seqs = build_vectors_audio(
            audio, source, index_dir, feature=feature, works=works, model_path=info["path"],
            model_hash=info["model_hash"], ray_address=ray_address, timeout=ray_timeout, shard_dir=shard_dir,
            skip_bad=skip_bad, model_batch=batch_size, progress=progress, log=log)
        t1 = t0 + secs["prepare"]
        t2 = time.perf_counter()
    elif engine == "ray":
        from coversearch.scale.ray_build import build_vectors

        vectors, base, bad, extra, secs, seqs = build_vectors(
            source, index_dir, feature=feature, subset=subset, model_path=info["path"], model_hash=info["model_hash"],
            ray_address=ray_address, timeout=ray_timeout, shard_dir=shard_dir, skip_bad=skip_bad,
            model_batch=batch_size, progress=progress, log=log)
        t1 = t0 + secs["prepare"]
        t2 = time.perf_counter()
    else:
        cache, report = prepare_data(source, feature, jobs=jobs, skip_bad=skip_bad, progress=progress, subset=subset, log=log)
        t1 = time.perf_counter()
        vectors = embed_sequences(net, cache.sequences(), batch_size=batch_size, progress=progress)
        t2 = time.perf_counter()
        base = {"perf_id": cache.perf_ids, "work_id": cache.work_ids, "subset": cache.subsets, "path": cache.paths}
        bad, extra = audio_bad + report.bad, {"cache": str(cache.path)}
        if audio is not None:
            extra.update(audio_extra)
        seqs = cache.sequences()
    meta = load_metadata(source)
    cols = {"perf_id": base["perf_id"], "work_id": base["work_id"], "subset": base["subset"]}
    for field in ("work_title", "work_artist", "perf_title", "perf_artist", "release_year", "instrumental"):
        cols[field] = [meta.get(p, {}).get(field, "") for p in base["perf_id"]]
    if any("source" in meta.get(p, {}) for p in base["perf_id"]):  # extracted from audio: the audio file
        cols["source"] = [meta.get(p, {}).get("source", "") for p in base["perf_id"]]
    cols["path"] = base["path"]
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
            "extra": {**extra, "engine": engine, "skipped": [p for p, _ in bad]},
        },
        sequences=seqs,  # re-ranking reads the index's own copy, never the source
        json_files={RERANK_FILE: {"config": RerankConfig().to_dict(), "chosen_by": "defaults"}},
        store=store_cfg,
    )
    t3 = time.perf_counter()
    return {
        "index_dir": str(index_dir),
        "count": len(vectors),
        "skipped": len(bad),
        "seconds": {"prepare": round(t1 - t0, 2), "embed": round(t2 - t1, 2), "index": round(t3 - t2, 2)},
        "manifest": manifest,
    }


def query(
    perf_id: str | None = None,
    *,
    file: str | Path | None = None,
    audio: str | Path | None = None,
    k: int = 10,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    model: str | Path | None = None,
    rerank: bool = False,
    shortlist: int | None = None,
    jobs: int = 1,
    bundle=None,
    with_vector: bool = False,
    store: str | None = None,
    milvus_uri: str | None = None,
    rerank_config=None,
) -> dict:
    """The ``k`` nearest performances to an indexed id, an h5 ``file`` or an ``audio`` file.

    A file or audio query that is itself in the index is marked
    ``same_recording`` (see ``_same_recording``) instead of being dropped.

    With ``rerank``, the ``shortlist`` (K1) nearest by cosine (default: the
    index's ``rerank.json`` rule, 2% of the catalogue, at least 200) are
    re-ordered by the alignment cascade (:func:`coversearch.rerank.score_query`);
    the eligible items never change, only their order. ``jobs``: cores;
    ``rerank_config``: a ``RerankConfig`` instead of the index's (benchmarks).

    ``bundle`` is an index already loaded from ``index_dir`` (the HTTP server
    keeps one in memory and swaps it whole on reload); ``with_vector`` adds the
    query's unit vector as ``query_vector`` (the server's distance profile).

    Returns:
        {"query": {...}, "results": [{rank, perf_id, work_id, work_title, perf_artist,
        ..., distance, same_work}]} with cosine distance = 1 - cosine.

    ``store`` / ``milvus_uri``: expect the index's vectors in this store
    (default: whatever its manifest names) / reach its Milvus collection there.

    Raises:
        UnknownIdError: ``perf_id`` not in the index (with suggestions).
        IndexMismatchError: missing index, or ``file`` embedded by another model.
    """
    import numpy as np


    given = [n for n, v in (("a performance id", perf_id), ("--file", file), ("--audio", audio)) if v is not None]
    if not given:
        raise ConfigError("nothing to query: give a performance id (e.g. P_22), --file X.h5 or --audio X.mp3")
    if len(given) > 1:
        raise ConfigError(f"give one query, not {' and '.join(given)}")
    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    at_least("--shortlist", shortlist)
    at_least("--jobs", jobs)
    # a one-shot audio query analyses its audio in a child process while this one loads the index and model
    pending = _start_audio(audio, index_dir) if audio is not None and bundle is None else None
    try:
        bundle = bundle if bundle is not None else open_index(index_dir, store, milvus_uri)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    items = bundle.items
    if perf_id is not None:
        row = bundle.row_of(perf_id)
        vec = np.asarray(bundle.vector_of(perf_id), np.float32)[None]
        qinfo = {"perf_id": perf_id, "work_id": items.column("work_id")[row].as_py(), "row": row}
        exclude = [row]
        qseq = None
    elif audio is not None:
        vec, qinfo, qseq = _embed_audio(audio, bundle, model, pending)
        exclude = []
    else:
        vec, qinfo, qseq = _embed_file(file, bundle, model)
        exclude = []
    fused = stage = None
    if rerank:
        from coversearch.rerank import score_query

        cfg = rerank_config or load_rerank_config(bundle)
        seqs = bundle.sequences()
        k1 = max(k, shortlist or cfg.first_stage_k(bundle.count - len(exclude)))
        scores, rows = bundle.search(vec, k1, exclude_rows=exclude)
        if qseq is None:
            qseq = seqs.sequence(row)
        r = score_query(rows[0], scores[0], qseq, seqs, config=cfg, jobs=jobs)
        rows = r.rows[None, :k]
        scores = r.cosine[None, :k].astype(np.float32)
        fused, stage = r.score[:k], r.stage[:k]
        qinfo["rerank"] = {"shortlist": int(k1), "fine": cfg.fine, "weight": cfg.weight, "norm": cfg.norm}
    else:
        scores, rows = bundle.search(vec, k, exclude_rows=exclude)
    results = []
    for rank, (s, r) in enumerate(zip(scores[0], rows[0]), start=1):
        if r < 0:
            continue
        rec = bundle.item_record(int(r))
        rec.update(rank=rank, row=int(r), distance=float(1.0 - s), same_work=rec["work_id"] == qinfo.get("work_id"))
        if fused is not None:
            rec["fused_score"] = float(fused[rank - 1])
            rec["rerank_stage"] = str(stage[rank - 1])
        rec["same_recording"] = _same_recording(qinfo, rec)
        results.append(rec)
    _adopt_work(qinfo, results)
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


def open_index(index_dir, store: str | None = None, milvus_uri: str | None = None, *, load_index: bool = True):
    """Load an index folder, checking it keeps its vectors in ``store`` (if given)."""
    from coversearch.errors import IndexMismatchError
    from coversearch.index.bundle import load_bundle

    bundle = load_bundle(index_dir, load_index=load_index, milvus_uri=milvus_uri)
    if store and store != bundle.store_kind:
        raise IndexMismatchError(f"index {index_dir} keeps its vectors in {bundle.store_kind}, not {store}; "
                                 f"rebuild it with `coversearch build-index --store {store}`")
    return bundle


def _sequences_of(bundle):
    """The prepared sequences of an index's items (row order): the folder's own
    copy (:meth:`Bundle.sequences`), or for a folder built before it carried one,
    the prepared cache it was built from (checked)."""
    from coversearch.index.sequences import SEQUENCES

    if SEQUENCES in bundle.manifest.files:
        return bundle.sequences()
    return _cache_of(bundle)


def _cache_of(bundle):
    """The prepared cache an index was built from (older index folders carry no sequences of their own)."""
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


# cosine distance under which two embeddings come from the same features (float32
# rounding of one recording is ~1e-7; a re-encoded copy, e.g. mp3, is ~1e-3 away)
SAME_RECORDING_DISTANCE = 1e-5


def _same_recording(qinfo: dict, rec: dict) -> bool:
    """Is an indexed item the query itself? Same perf id read from an h5 file,
    same audio source path, or identical features (distance <= 1e-5)."""
    if "row" in qinfo:
        return False  # a query by id never returns its own row
    if qinfo.get("perf_id") and qinfo["perf_id"] == rec["perf_id"]:
        return True
    if qinfo.get("audio") and rec.get("source") and rec["source"] == qinfo["audio"]:
        return True
    return rec["distance"] <= SAME_RECORDING_DISTANCE


def _adopt_work(qinfo: dict, results: list[dict]) -> None:
    """An audio query found in the index takes that item's work, so its versions get the '*' mark."""
    same = next((r for r in results if r["same_recording"]), None)
    if same is not None and not qinfo.get("work_id"):
        qinfo["work_id"] = same["work_id"]
        qinfo["same_recording_as"] = same["perf_id"]
        for r in results:
            r["same_work"] = r["work_id"] == same["work_id"]


def audio_features_dir(audio: str | Path) -> Path:
    """Where ``build-index --audio DIR`` keeps the features it extracts:
    ``$XDG_CACHE_HOME/coversearch/audio-features/<DIR name>-<sha256 of its absolute path, 10 hex>``
    (``~/.cache`` by default), so the music folder itself is never written."""
    import hashlib

    p = Path(audio).resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "coversearch" / "audio-features" / f"{p.name}-{hashlib.sha256(str(p).encode()).hexdigest()[:10]}"


def _audio_feature(feature: str) -> str:
    if feature not in ("hpcp", "cens"):
        raise ConfigError(f"the model reads {feature!r}, which cannot be computed from audio here (hpcp or cens only)")
    return feature


def extract_audio(inputs, out, *, features=("hpcp",), works=None, jobs: int = 2, skip_bad: bool = False,
                  progress: bool = True, log=print) -> dict:
    """Extract Da-TACOS features from audio files and folders into ``out`` (``coversearch.audio.batch.extract``)."""
    from coversearch.audio.batch import extract

    return extract(inputs, out, features=features, works=works, jobs=jobs, skip_bad=skip_bad, progress=progress, log=log)


def audio_sequence(path: str | Path, feature: str = "hpcp"):
    """An audio file -> the prepared sequence the encoder reads, (T', 12) float32 at 0.232 s.

    Decodes, extracts ``feature`` as Da-TACOS did (hop 512) and prepares it
    like any indexed file (``features.prepare``).

    Raises:
        DataError: unusable audio (one line naming the file).
        ConfigError: a feature that cannot be computed from audio.
    """
    from coversearch.audio.extract import extract_file
    from coversearch.config import DEFAULT_HOP
    from coversearch.features.prepare import prepare

    feature = _audio_feature(feature)
    return prepare(extract_file(path, (feature,))[feature], DEFAULT_HOP)


def _index_model(bundle, model):
    """The encoder for an index: ``model`` if given, else the model the folder
    carries (an adapted index), else the shipped one; refused unless it made
    the index's vectors."""
    from coversearch.model.checkpoint import load_checkpoint

    net, info = load_checkpoint(model or bundle.own_model())
    bundle.check_model(info["model_hash"], net.config.dim)
    return net, info


def _query_model(bundle, model):
    """``_index_model``, and for a Milvus index also the collection's model check."""
    net, info = _index_model(bundle, model)
    if bundle.store_kind == "milvus":  # the collection, too, must hold this model's vectors
        bundle.store.check(model_hash=info["model_hash"], dim=net.config.dim, what="query model")
    return net, info


def _start_audio(audio, index_dir):
    """Start ``audio_sequence`` of a query's audio in a forked child (:mod:`coversearch._background`),
    with the feature the index's manifest names; it runs in the caller where forking is unsafe.
    None when the manifest is unreadable (``open_index`` then reports it)."""
    from coversearch import _background
    from coversearch.audio.decode import check_audio_path
    from coversearch.errors import IndexMismatchError
    from coversearch.index.manifest import Manifest

    check_audio_path(audio)  # missing, unsupported or empty: said now, not after loading the model
    try:
        feature = _audio_feature(Manifest.read(Path(index_dir) / "manifest.json").feature)
    except (IndexMismatchError, ConfigError):
        return None
    pending = _background.start(audio_sequence, audio, feature)
    pending.feature = feature
    return pending


def _embed_audio(audio, bundle, model, pending=None):
    from coversearch.model.embed import embed_sequences

    try:
        net, _ = _query_model(bundle, model)
        feature = bundle.manifest.feature
        seq = pending.result() if pending is not None and pending.feature == feature else \
            audio_sequence(audio, feature)
    finally:
        if pending is not None:
            pending.cancel()
    vec = embed_sequences(net, [seq])
    return vec, {"audio": str(Path(audio).resolve()), "perf_id": None, "work_id": None}, seq


def _embed_file(file, bundle, model):
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare
    from coversearch.model.embed import embed_sequences

    net, _ = _query_model(bundle, model)
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
    store: str | None = None,
    milvus_uri: str | None = None,
) -> dict:
    """All-against-all retrieval metrics of an index (each query excluded from its own list).

    With ``rerank``, each query's cosine shortlist is re-ordered by the
    cascade (the index's ``rerank.json``, or ``rerank_config``, a
    ``RerankConfig``) and the rest of the ranking stays in cosine order;
    ``max_queries`` evaluates a fixed, seeded sample of the queries that have
    a version in the index. ``recall_at_k`` is always the first stage's.
    For an index whose vectors are in Milvus, the vectors evaluated are the
    ones the collection returns (checked against the model and count first).
    """
    import numpy as np

    from coversearch.evaluate.retrieval import retrieval_metrics

    # 0 is refused, never read as "not given" (--max-queries 0 used to evaluate everything)
    for option, value in (("--k", k), ("block", block), ("--max-queries", max_queries), ("--shortlist", shortlist),
                          ("--jobs", jobs)):
        at_least(option, value)
    bundle = open_index(index_dir, store, milvus_uri, load_index=False)
    labels = np.array(bundle.items.column("work_id").to_pylist())
    if bundle.store_kind == "milvus":
        vectors = bundle.store.fetch_vectors()
    else:
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
    from coversearch.model.embed import embed_sequences
    from coversearch.rerank.tune import tune_on_validation

    at_least("--queries", n_queries)
    at_least("--jobs", jobs)
    for s in shortlists:
        at_least("shortlist", s)
    bundle = load_bundle(index_dir, load_index=False)
    net, _ = _index_model(bundle, model)
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



def compare(a: str, b: str, *, index_dir: str | Path = DEFAULT_INDEX_DIR, model: str | Path | None = None,
            bundle=None, kinds: tuple[str, str] | None = None) -> dict:
    """Are ``a`` and ``b`` versions of the same work? Each is an indexed
    performance id, a Da-TACOS h5 file, or an audio file.

    Scores the pair as the retrieval pipeline does (cosine distance of the
    embeddings; fused cosine + alignment score of the re-rank stage) and
    decides with the threshold calibrated for the model
    (``NAME.calibration.json`` beside it; :mod:`coversearch.compare`).
    An audio file is decoded and its HPCP extracted as ``query --audio``
    does (:func:`audio_sequence`), with the same one-line errors.

    ``bundle``: an index already loaded from ``index_dir`` (the HTTP server
    passes its snapshot, so a request never mixes two builds). ``kinds``:
    the kind of each side (``id``, ``h5``, ``audio``) when the caller knows
    it; the server passes it so a client's string is never opened as a path.

    Returns:
        {"a": {...}, "b": {...}, "cosine_distance", "qmax", "qmax_norm",
        "fused", "versions", "confidence", "threshold", "cosine_only",
        "calibration": {path, model_hash, summary}}.

    Raises:
        DataError: a file is missing, unreadable, or of an unsupported type.
        UnknownIdError: an id is not in the index.
        IndexMismatchError: no index (for an id), or it was built by another model.
        ConfigError: the model has no (valid) calibration.
    """
    import numpy as np

    from coversearch.compare import load_calibration, model_file_and_hash, pair_scores, verdict

    mpath, mhash = model_file_and_hash(model)
    cal = load_calibration(mpath, mhash)
    kinds = list(kinds) if kinds is not None else [_compare_kind(x) for x in (a, b)]
    cache = net = None
    if "id" in kinds:
        if bundle is None:
            from coversearch.index.bundle import load_bundle

            bundle = load_bundle(index_dir, load_index=False)
        if bundle.manifest.model_hash != mhash:
            bundle.check_model(mhash, int(bundle.manifest.dim))
        cache = _sequences_of(bundle)
    sides = []
    for x, kind in zip((a, b), kinds):
        if kind == "id":
            row = bundle.row_of(x)
            vec = np.asarray(bundle.vectors[row], np.float32)
            seq = cache.sequence(row)
            info = {"kind": "id", "perf_id": x, "work_id": bundle.items.column("work_id")[row].as_py()}
        else:
            if net is None:
                from coversearch.model.checkpoint import load_checkpoint

                net, _ = load_checkpoint(mpath)
            seq, info = _compare_file_sequence(x, kind, net.config.feature)
            from coversearch.model.embed import embed_sequences

            vec = embed_sequences(net, [seq])[0]
        info["frames"] = int(len(seq))
        sides.append((vec, seq, info))
    cos = float(np.dot(sides[0][0].astype(np.float64), sides[1][0].astype(np.float64)))
    scores = pair_scores(cos, sides[0][1], sides[1][1], weight=cal.weight, norm=cal.norm, align=cal.align)
    out = {"a": sides[0][2], "b": sides[1][2], **scores, **verdict(scores, cal)}
    out["calibration"] = {"path": str(cal.path), "model_hash": cal.model_hash, "summary": cal.summary()}
    return out


def _compare_kind(x: str) -> str:
    """``h5``, ``audio`` or ``id`` for a ``compare`` argument."""
    from coversearch.audio.decode import AUDIO_EXTENSIONS as _AUDIO_SUFFIXES

    p = Path(x)
    suffix = p.suffix.lower()
    if p.is_dir():
        raise DataError(f"{x}: is a folder; compare takes a performance id, an h5 file or an audio file")
    if p.is_file():
        if suffix == ".h5":
            return "h5"
        if suffix in _AUDIO_SUFFIXES:
            return "audio"
        raise DataError(f"{x}: unsupported file type {suffix or '(none)'}; give an .h5 file or audio "
                        f"({', '.join(sorted(_AUDIO_SUFFIXES))})")
    if suffix == ".h5" or suffix in _AUDIO_SUFFIXES or "/" in x or "\\" in x:
        raise DataError(f"file not found: {x}")
    return "id"


def _compare_file_sequence(x: str, kind: str, feature: str):
    """(prepared (T, 12) sequence, info) of an h5 or audio file."""
    from coversearch.features.prepare import prepare

    if kind == "h5":
        from coversearch.data.reader import load_chroma

        c = load_chroma(x, feature)
        return prepare(c.frames, c.hop), {"kind": "h5", "file": str(x), "perf_id": c.perf_id, "work_id": c.work_id}
    return audio_sequence(x, feature), {"kind": "audio", "file": str(x)}


def calibrate(val_data, **kw) -> dict:
    """Calibrate ``compare``'s verdict for a model on validation works (:func:`coversearch.calibrate.calibrate`)."""
    from coversearch.calibrate import calibrate as run

    return run(val_data, **kw)


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
    ec, tc = encoder_config, train_config
    for option, value, low in (("--epochs", tc.epochs, 1), ("--works-per-batch", tc.works_per_batch, 2),
                               ("--crop", tc.crop, 32), ("--threads", tc.threads, 1), ("--channels", ec.channels, 1),
                               ("--hidden", ec.hidden, 1), ("--n-temporal", ec.n_temporal, 1), ("--jobs", jobs, 1)):
        at_least(option, value, low)
    if not tc.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {tc.lr}")
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
    return adapt_index(bundle, _sequences_of(bundle), out_index_dir or index_dir, model=model, out_model=out_model,
                       rounds=rounds, jobs=jobs, progress=progress, log=log,
                       **{k: v for k, v in (("mine", mine), ("train", train)) if v is not None})


__all__ = ["build_index", "query", "evaluate", "train", "report", "adapt", "ensure_demo_data", "prepare_data",
           "extract_audio", "audio_sequence", "DataError", "UnknownIdError"]


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
