"""read -> prepare -> embed as a Ray Data pipeline (``build-index --engine ray``).

The same three steps as the local path (``features.cache`` + ``model.embed``),
distributed::

    from_items(entries)                     one row per performance file
      .map_batches(read_prepare)            tasks: [extract audio ->] h5 -> (T', 12) at the model rate
      .map_batches(Embedder, ActorPool)     actors: the encoder, loaded once per actor
      .write_parquet(shard_dir)             shards: idx, ids, path, error, frames, vector

The driver then reads the shards back in the original order (``idx``) and
hands vectors + items to the same bundle writer as the local path
(:func:`coversearch.index.bundle.write_bundle`), so the folder is built aside
and swapped in: an interrupted or failed Ray job leaves the old index
answering.

Sizing on a small machine: an actor pool waits silently for CPUs it cannot
get, so the encoder pool asks for ``EMBED_CPUS`` = 0.5 CPU (1 actor by
default), readers for ``READ_CPUS`` each, and :func:`check_resources` refuses
to start when the cluster cannot hold one actor plus one reader. Every job
runs under two timeouts: ``stall_timeout`` (no operator made progress for
that long: Ray Data's ``execution_no_progress_timeout_s``) and ``timeout``
(the whole job; on expiry the driver disconnects, which cancels its tasks and
actors). Without an address a local Ray is started with ``num_cpus`` = 2 and
no dashboard, and stopped afterwards.

Errors in a file are not Ray failures: the read stage returns them in an
``error`` column, and the driver raises the first one as a one-line
``DataError`` (or skips them with ``skip_bad``), exactly as the local path.

Audio (``build-index --audio DIR --engine ray``, :func:`build_vectors_audio`):
the driver plans the ``extract`` job exactly as the local path does
(``audio.batch.ExtractPlan``: the folder listing, ids, ``--works`` groups,
the features folder's record of what is already extracted); each file to
extract becomes a row whose read task runs ``audio.batch.extract_task`` (decode,
Da-TACOS HPCP, write the h5 into the features folder, read the tags) and then
reads that h5 like any other; files already extracted are plain h5 rows. The
driver records the results in the features folder (record + metadata JSON)
as the local job does, so the items, the index and a later build's reuse are
the same whichever engine extracted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coversearch.errors import ConfigError, CoversearchError, DataError

EMBED_CPUS = 0.5
READ_CPUS = 0.75
READ_BATCH = 8  # files per read task
AUDIO_READ_BATCH = 1  # audio files per read task: each is ~1 CPU-s per minute of music, the unit worth a task
EMBED_BATCH = 64  # sequences per actor call; the encoder runs them in length-sorted sub-batches of 8
LOCAL_CPUS = 2
DEFAULT_TIMEOUT = 24 * 3600.0
DEFAULT_STALL_TIMEOUT = 600.0


@dataclass
class RayBuildResult:
    """What the pipeline produced, in input order.

    Attributes:
        vectors: (N, D) float32 unit rows of the readable performances.
        columns: ``perf_id``, ``work_id``, ``subset``, ``path`` lists (N each).
        bad: ``(path, message)`` of skipped files.
        n_nonfinite: NaN/inf values replaced by 0 while reading.
        seconds: wall time of ``start`` (Ray up), ``pipeline`` (read+embed+shards), ``collect``.
        resources: the cluster's resources as Ray reported them.
        sequences: N (T, 12) float32 prepared sequences (the index folder keeps them for re-ranking).
    """

    vectors: np.ndarray
    columns: dict
    bad: list = field(default_factory=list)
    n_nonfinite: int = 0
    seconds: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    sequences: list = field(default_factory=list)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'coversearch[scale]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int = LOCAL_CPUS, quiet: bool = True):
    """Connect to ``address`` (an existing cluster: ``ray://host:10001`` or ``host:6379`` or ``auto``),
    or start a local Ray with ``num_cpus`` and no dashboard; reuse a session already open in this
    process (tests keep one per module). Shuts down only what it started."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    init_ray(address, num_cpus=num_cpus, quiet=quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def init_ray(address: str | None = None, *, num_cpus: int = LOCAL_CPUS, quiet: bool = True, attempts: int = 3):
    """``ray.init`` for an existing cluster or a local Ray (no dashboard), retried: a local head's
    raylet must register within Ray's fixed 30 s, which a heavily loaded machine can miss.

    Raises:
        ConfigError: Ray missing, or still not started after ``attempts`` tries (one line).
    """
    ray = _ray()
    kwargs = dict(include_dashboard=False, log_to_driver=not quiet,
                  logging_level=logging.WARNING if quiet else logging.INFO)
    for attempt in range(1, attempts + 1):
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=num_cpus, **kwargs)
            return ray
        except Exception as e:
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == attempts:
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                raise ConfigError(f"cannot start {where} ({attempts} tries): {msg}") from None
            time.sleep(2.0 * attempt)
    return ray


def check_resources(ray, *, embed_cpus: float = EMBED_CPUS, read_cpus: float = READ_CPUS, actors: int = 1) -> dict:
    """The cluster's resources; refuse a plan whose pools could never be scheduled.

    Raises:
        ConfigError: fewer CPUs than one reader plus the encoder actors.
    """
    res = {k: float(v) for k, v in ray.cluster_resources().items() if k in ("CPU", "memory", "object_store_memory", "GPU")}
    need = actors * embed_cpus + read_cpus
    if res.get("CPU", 0.0) < need:
        raise ConfigError(f"the Ray cluster has {res.get('CPU', 0.0):g} CPUs; the pipeline needs at least {need:g} "
                          f"({actors} encoder actor(s) x {embed_cpus} + one reader x {read_cpus}); its pools would wait silently")
    return res


def read_prepare(batch, feature: str):
    """Ray task: read + prepare a batch of files (pyarrow in, pyarrow out).

    Input columns: idx, path (+ ids, and ``task``: "" or the JSON of an
    ``audio.batch.extract_task`` argument that writes ``path`` first). Output
    adds ``frames`` (large_list<float32>, row-major (T', 12)), ``n_nonfinite``,
    ``error`` ("" when fine) and ``extracted`` ("" or the JSON of the
    extraction's result).
    """
    import pyarrow as pa

    frames, nnf, errors, extracted = [], [], [], []
    paths = batch.column("path").to_pylist()
    tasks = batch.column("task").to_pylist() if "task" in batch.column_names else [""] * len(paths)
    for path, task in zip(paths, tasks):
        try:
            extracted.append("")
            if task:
                from coversearch.audio.batch import extract_task

                r = extract_task(json.loads(task))
                extracted[-1] = json.dumps(r)
                if "error" in r:
                    raise DataError(r["error"])
            seq, n_bad = _read_one(path, feature)
            frames.append(np.ascontiguousarray(seq, np.float32).reshape(-1))
            nnf.append(n_bad)
            errors.append("")
        except DataError as e:
            frames.append(np.zeros(0, np.float32))
            nnf.append(0)
            errors.append(str(e))
    offsets = np.cumsum([0] + [len(f) for f in frames]).astype(np.int64)
    flat = np.concatenate(frames) if frames else np.zeros(0, np.float32)
    return (batch.append_column("frames", pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat)))
                 .append_column("n_nonfinite", pa.array(nnf, pa.int64()))
                 .append_column("error", pa.array(errors, pa.string()))
                 .append_column("extracted", pa.array(extracted, pa.string())))


def _read_one(path: str, feature: str) -> tuple[np.ndarray, int]:
    """(T', 12) prepared sequence and NaN/inf count of one h5 file (audio rows are
    extracted to h5 first, by ``read_prepare``)."""
    from coversearch.data.reader import load_chroma
    from coversearch.features.prepare import prepare

    c = load_chroma(path, feature)
    return prepare(c.frames, c.hop), int(c.n_nonfinite)


class Embedder:
    """Ray actor: the encoder, rebuilt once from the checkpoint bytes the driver sent
    (so a cluster's workers need no copy of the model file), checked by hash."""

    def __init__(self, model_bytes: bytes, model_hash: str, batch_size: int = 8, threads: int = 1):
        import torch

        from coversearch.model.checkpoint import load_checkpoint

        torch.set_num_threads(max(1, threads))
        with tempfile.TemporaryDirectory(prefix="coversearch-model-") as d:
            p = Path(d) / "encoder.pt"
            p.write_bytes(model_bytes)
            self.net, info = load_checkpoint(p)
        if info["model_hash"] != model_hash:
            raise ConfigError(f"model bytes reached the Ray actor as {info['model_hash']}, expected {model_hash}")
        self.batch_size = batch_size

    def __call__(self, batch):
        import pyarrow as pa

        from coversearch.model.embed import embed_sequences

        col = batch.column("frames").combine_chunks()
        offs = col.offsets.to_numpy()
        values = col.values.to_numpy(zero_copy_only=False)
        errors = batch.column("error").to_pylist()
        ok = [i for i, e in enumerate(errors) if not e]
        seqs = [values[offs[i] : offs[i + 1]].reshape(-1, 12) for i in ok]
        d = self.net.config.dim
        out = np.zeros((len(errors), d), np.float32)
        if seqs:
            out[ok] = embed_sequences(self.net, seqs, batch_size=self.batch_size)
        vec = pa.FixedSizeListArray.from_arrays(pa.array(out.reshape(-1)), d)
        # the prepared frames stay in the shards: the index folder stores them for re-ranking
        return batch.append_column("vector", vec)


def _run_with_timeout(fn, timeout: float, ray) -> None:
    """Run ``fn`` (a blocking Ray Data job) in a thread; on timeout disconnect the driver (which
    cancels the job's tasks and actors) and raise."""
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name="coversearch-ray-job", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        ray.shutdown()
        t.join(30)
        raise CoversearchError(f"the Ray job did not finish within {timeout:g} s (--ray-timeout); "
                               "it was cancelled and the previous index is unchanged")
    if "error" in box:
        raise box["error"]


def _explain(e: BaseException) -> str:
    s = str(e).strip()
    lines = [ln for ln in s.splitlines() if ln.strip()]
    # Ray wraps user errors in long tracebacks; the last line names the cause.
    return (lines[-1] if lines else type(e).__name__)[:300]


def run_pipeline(
    entries: list,
    *,
    model_path: str | Path,
    model_hash: str,
    feature: str,
    shard_dir: str | Path,
    ray_address: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    skip_bad: bool = False,
    embed_actors: int = 1,
    embed_batch: int = EMBED_BATCH,
    read_batch: int = READ_BATCH,
    model_batch: int = 8,
    num_cpus: int = LOCAL_CPUS,
    progress: bool = False,
    on_table=None,
) -> RayBuildResult:
    """Read, prepare and embed ``entries`` on Ray; return vectors and items in input order.

    Args:
        entries: performances to index (``PerfEntry``-like: perf_id, work_id, subset, path).
        model_path, model_hash: the encoder checkpoint (its bytes are shipped to the actors).
        feature: chroma feature to read from h5 files.
        shard_dir: where the Parquet shards go (must be visible to every node and the driver);
            removed afterwards by the caller.
        ray_address: an existing cluster; None = a local Ray with ``num_cpus``.
        timeout, stall_timeout: seconds for the whole job / without progress.
        skip_bad: skip unreadable files instead of failing on the first.
        embed_actors: encoder actors (each ``EMBED_CPUS``).
        embed_batch, read_batch, model_batch: rows per actor call / per read task / per forward pass.
        on_table: called with the job's table (sorted by input order) before
            unreadable files are raised or skipped (the audio path records its
            extractions there); may raise.

    Raises:
        DataError: an unreadable file (first by input order), unless ``skip_bad``; nothing readable.
        ConfigError: Ray missing or unreachable, or a cluster too small for the pools.
        CoversearchError: the job timed out or failed (one line; the index is untouched).
    """
    import pyarrow as pa

    if not entries:
        raise DataError("nothing to index")
    t0 = time.perf_counter()
    shard_dir = Path(shard_dir)
    with ray_session(ray_address, num_cpus=num_cpus, quiet=not progress) as ray:
        rd = ray.data
        res = check_resources(ray, actors=embed_actors)
        t1 = time.perf_counter()
        ctx = rd.DataContext.get_current()
        ctx.execution_options.verbose_progress = False
        ctx.enable_progress_bars = bool(progress)
        ctx.print_on_execution_start = bool(progress)
        ctx.execution_no_progress_timeout_s = float(stall_timeout)
        ctx.wait_for_min_actors_s = int(max(1, min(stall_timeout, timeout)))
        if not progress:
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        rows = [{"idx": i, "perf_id": e.perf_id, "work_id": e.work_id, "subset": e.subset, "path": str(e.path),
                 "task": getattr(e, "task", "")} for i, e in enumerate(entries)]
        n_blocks = max(1, min(len(rows) // max(1, read_batch), 1000))
        ds = rd.from_items(rows, override_num_blocks=n_blocks)
        ds = ds.map_batches(read_prepare, fn_kwargs={"feature": feature}, batch_size=read_batch,
                            batch_format="pyarrow", num_cpus=READ_CPUS)
        ds = ds.map_batches(Embedder, fn_constructor_kwargs={"model_bytes": Path(model_path).read_bytes(),
                                                             "model_hash": model_hash, "batch_size": model_batch},
                            compute=rd.ActorPoolStrategy(size=embed_actors), num_cpus=EMBED_CPUS,
                            batch_size=embed_batch, batch_format="pyarrow")
        try:
            _run_with_timeout(lambda: ds.write_parquet(str(shard_dir)), timeout, ray)
        except CoversearchError:
            raise
        except Exception as e:
            raise CoversearchError(f"the Ray job failed: {_explain(e)}") from None
        t2 = time.perf_counter()
    files = sorted(shard_dir.glob("*.parquet"))
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.ParquetFile(f).read() for f in files]) if files else None
    if table is None or table.num_rows != len(entries):
        got = 0 if table is None else table.num_rows
        raise CoversearchError(f"the Ray job wrote {got} of {len(entries)} rows to {shard_dir}; the index is unchanged")
    table = table.sort_by("idx")
    if on_table is not None:
        on_table(table)
    errors = table.column("error").to_pylist()
    paths = table.column("path").to_pylist()
    bad = [(p, e) for p, e in zip(paths, errors) if e]
    if bad and not skip_bad:
        raise DataError(f"{bad[0][1]} (use --skip-bad to skip unreadable files)")
    keep = np.array([not e for e in errors])
    if not keep.any():
        raise DataError("no readable performance in the input")
    d = table.schema.field("vector").type.list_size
    vec = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, d)[keep]
    cols = {c: [v for v, k in zip(table.column(c).to_pylist(), keep) if k] for c in ("perf_id", "work_id", "subset", "path")}
    nnf = int(np.asarray(table.column("n_nonfinite").to_numpy())[keep].sum())
    frames = table.column("frames").combine_chunks()
    f_offs = frames.offsets.to_numpy()
    f_vals = frames.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    seqs = [f_vals[f_offs[i]:f_offs[i + 1]].reshape(-1, 12) for i in np.flatnonzero(keep)]
    t3 = time.perf_counter()
    return RayBuildResult(vectors=np.ascontiguousarray(vec, np.float32), columns=cols, bad=bad, n_nonfinite=nnf,
                          seconds={"start": round(t1 - t0, 2), "pipeline": round(t2 - t1, 2), "collect": round(t3 - t2, 2)},
                          resources=res, sequences=seqs)


@contextlib.contextmanager
def shard_folder(index_dir: str | Path, shard_dir: str | Path | None = None):
    """A fresh folder for the job's Parquet shards (inside ``shard_dir`` if given, else beside
    ``index_dir``), removed afterwards whatever happens."""
    parent = Path(shard_dir) if shard_dir else Path(index_dir).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f".{Path(index_dir).name}.ray-shards.", dir=parent))
    try:
        yield d / "shards"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def build_vectors(source, index_dir, *, feature: str, subset: str | None, model_path, model_hash: str,
                  ray_address: str | None = None, timeout: float | None = None, shard_dir=None,
                  skip_bad: bool = False, model_batch: int = 8, progress: bool = False, log=print):
    """The ``--engine ray`` half of ``api.build_index``: list the performances under
    ``source`` as the local path does, run :func:`run_pipeline` with shards in a
    temporary folder, report skipped files.

    Returns:
        (vectors (N, D) float32, columns perf_id/work_id/subset/path, bad [(path, msg)],
        manifest extra {"ray": ...}, seconds {"prepare": Ray start-up, "embed": pipeline + collect},
        N prepared (T, 12) sequences).
    """
    from coversearch.data.layout import find_performances
    from coversearch.features.cache import log_read_report

    entries = find_performances(source, feature, subset)
    with shard_folder(index_dir, shard_dir) as shards:
        r = run_pipeline(entries, model_path=model_path, model_hash=model_hash, feature=feature, shard_dir=shards,
                         ray_address=ray_address, timeout=timeout or DEFAULT_TIMEOUT, skip_bad=skip_bad,
                         model_batch=model_batch, progress=progress)
    log_read_report(r.bad, r.n_nonfinite, log)
    extra = {"ray": {"address": ray_address or "local", "resources": r.resources, "seconds": r.seconds,
                     "embed_cpus": EMBED_CPUS, "read_cpus": READ_CPUS, "embed_batch": EMBED_BATCH}}
    return r.vectors, r.columns, r.bad, extra, {"prepare": r.seconds["start"],
                                               "embed": r.seconds["pipeline"] + r.seconds["collect"]}, r.sequences


@dataclass
class AudioEntry:
    """A performance of an audio folder: its h5 in the features folder, and the
    extraction that writes it first ("": already extracted)."""

    perf_id: str
    work_id: str
    subset: str
    path: Path
    task: str = ""


def audio_entries(plan, feature: str) -> list[AudioEntry]:
    """Every performance a local ``build-index --audio`` would index after ``plan`` ran, in its order.

    That is the features folder as the local path reads it (``find_performances``,
    sorted by subset, work and perf number): the h5 already there, with the files
    ``plan`` (re-)extracts in place of their old ones.
    """
    from coversearch.audio.batch import output_paths
    from coversearch.data.layout import find_performances

    todo = {t["perf_id"]: t for t in plan.tasks}
    try:
        have = [e for e in find_performances(plan.out, feature) if e.perf_id not in todo]
    except DataError:  # a new features folder: nothing extracted yet
        have = []
    out = [AudioEntry(e.perf_id, e.work_id, e.subset, Path(e.path)) for e in have]
    for pid, t in todo.items():
        path = output_paths(plan.out, t["work_id"], pid, [feature])[feature]
        out.append(AudioEntry(pid, t["work_id"], "benchmark", path, json.dumps(t)))

    def num(ident: str) -> int:
        return int(ident.split("_", 1)[1])

    return sorted(out, key=lambda e: (e.subset, num(e.work_id), num(e.perf_id)))


def build_vectors_audio(audio, features_dir, index_dir, *, feature: str, works=None, model_path, model_hash: str,
                        ray_address: str | None = None, timeout: float | None = None, shard_dir=None,
                        skip_bad: bool = False, model_batch: int = 8, progress: bool = False, log=print):
    """``build-index --audio DIR --engine ray``: extraction inside the pipeline (see the module doc).

    The features folder gets what the local path's ``extract`` writes (the h5,
    the record of what is done, the metadata JSON), so a later build reuses them
    with either engine. On a cluster it must be on storage every node shares,
    like the audio folder: files the driver cannot see are not recorded (one
    line says so) and are extracted again next time.

    Returns:
        As :func:`build_vectors`, with ``extra["extract"]`` = counts of extracted,
        unchanged and skipped audio files; ``bad`` lists unusable audio files by
        their path (as the local path) and unreadable h5 by theirs.

    Raises:
        DataError: an unusable audio file, the first in the local job's order
            (the same message), unless ``skip_bad``; a folder without audio.
    """
    from coversearch.audio.batch import ExtractPlan, output_paths
    from coversearch.features.cache import log_read_report

    plan = ExtractPlan([audio], features_dir, features=(feature,), works=works, skip_bad=skip_bad)
    entries = audio_entries(plan, feature)
    failed_paths: set[str] = set()
    invisible: list[str] = []

    def record(table):
        results = {}
        for pid, path, ex in zip(table.column("perf_id").to_pylist(), table.column("path").to_pylist(),
                                 table.column("extracted").to_pylist()):
            if ex:
                results[pid] = json.loads(ex)
                if "error" in results[pid]:
                    failed_paths.add(path)
        for t in plan.tasks:  # the local job's order (by file key): the same first bad file
            r = results.get(t["perf_id"])
            if r is None:
                continue
            if "error" not in r and not all(p.is_file() for p in output_paths(plan.out, t["work_id"], t["perf_id"],
                                                                              t["features"]).values()):
                invisible.append(t["src"])
                continue
            plan.accept(r, raise_bad=False)
        if invisible:
            log(f"{len(invisible)} feature file(s) the Ray workers wrote are not visible here under {plan.out}: "
                "not recorded for reuse (give --features-dir on storage every node shares)")
        plan.finish(log)
        if plan.bad and not skip_bad:
            raise DataError(plan.bad[0][1])

    log(f"extracting {feature} of {len(plan.tasks)} audio file(s) under {audio} into {plan.out} on Ray "
        f"({plan.unchanged} unchanged)")
    with shard_folder(index_dir, shard_dir) as shards:
        r = run_pipeline(entries, model_path=model_path, model_hash=model_hash, feature=feature, shard_dir=shards,
                         ray_address=ray_address, timeout=timeout or DEFAULT_TIMEOUT, skip_bad=True,
                         read_batch=AUDIO_READ_BATCH, model_batch=model_batch, progress=progress, on_table=record)
    read_bad = [(p, m) for p, m in r.bad if p not in failed_paths]
    if read_bad and not skip_bad:
        raise DataError(f"{read_bad[0][1]} (use --skip-bad to skip unreadable files)")
    log_read_report(read_bad, r.n_nonfinite, log)
    extra = {"ray": {"address": ray_address or "local", "resources": r.resources, "seconds": r.seconds,
                     "embed_cpus": EMBED_CPUS, "read_cpus": READ_CPUS, "embed_batch": EMBED_BATCH,
                     "audio_read_batch": AUDIO_READ_BATCH},
             "extract": {"extracted": plan.stats["ok"], "unchanged": plan.unchanged, "skipped": len(plan.bad)}}
    return r.vectors, r.columns, list(plan.bad) + read_bad, extra, \
        {"prepare": r.seconds["start"], "embed": r.seconds["pipeline"] + r.seconds["collect"]}, r.sequences


__all__ = ["build_vectors", "build_vectors_audio", "init_ray", "run_pipeline", "ray_session", "check_resources", "shard_folder", "RayBuildResult"]
