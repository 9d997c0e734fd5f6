"""The Ray pipeline (``build-index --engine ray``) against the local path on
the same machine and the same performances: wall time per stage, throughput,
Ray's overhead, and that both give the same items, vectors and MAP.

Local path = ``build_cache`` (2 reader processes, a fresh cache file, so
nothing is reused) + ``embed_sequences`` (2 torch threads, batch 8). Ray path
= ``scale.ray_build.run_pipeline`` on a local Ray started here (2 CPUs,
readers 0.75 CPU each, one encoder actor of 0.5 CPU, 1 torch thread), Ray's
start-up timed apart. The index write (same bundle writer for both) is not
timed. Each stage's CPU time is reported for the local path (this process +
its reader children); Ray's workers are not this process's children, so for
Ray only wall time is reported.

    python benchmarks/bench_ray.py            # data/benchmark-standard-s2026-h4096-n600 (3,000 performances)
    python benchmarks/bench_ray.py --data DIR
    python benchmarks/bench_ray.py --audio data/bench-ray-audio   # build-index --audio, both engines

``--audio DIR``: ``build-index --audio DIR`` end to end (extract -> prepare ->
embed -> index folder) with ``--engine local`` (``extract --jobs 2``, then the
cache and the encoder with 2 torch threads) and ``--engine ray`` (extraction
inside the pipeline: read tasks of 0.75 CPU, one audio file each), each into
a fresh features folder, so both extract everything. DIR is filled first, if
empty, with ``--songs`` (20) generated songs of ``--seconds`` (30) as mp3
(192 kbps): the first two versions of the first demo works (seed 0), with a
``works.csv`` grouping them (passed as ``--works``, so MAP is defined). Reports
wall time per stage, songs per second, and that both give the same items,
vectors and MAP. Writes ``results/ray_audio.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, table, write_result


def cpu_s() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def make_songs(folder: Path, n: int, seconds: float) -> list[Path]:
    """``n`` generated songs as mp3 in ``folder`` (kept when already there): versions 0 and 1
    of the demo works in membership order, so every song has a sibling; and
    ``folder/works.csv`` grouping them by work (``--works``)."""
    from coversearch.audio.decode import essentia_standard
    from coversearch.synth.generate import performance_audio
    from coversearch.synth.profiles import get_profile, membership

    folder.mkdir(parents=True, exist_ok=True)
    es = essentia_standard()
    out, rows = [], []
    for work, perfs in membership(get_profile("demo"), 0):
        for v in range(min(2, len(perfs))):
            path = folder / f"{work}_v{v}.mp3"
            if not path.is_file():
                a, sr = performance_audio(work, v, max_seconds=seconds, analysis="essentia")
                tmp = path.with_name(f".{path.stem}.tmp.mp3")
                es.MonoWriter(filename=str(tmp), format="mp3", sampleRate=sr, bitrate=192)(a)
                os.replace(tmp, path)
            out.append(path)
            rows.append(f"{path.name},{work}")
            if len(out) == n:
                break
        if len(out) == n:
            break
    tmp = folder / ".works.csv.tmp"
    tmp.write_text("path,work_id\n" + "\n".join(rows) + "\n")
    os.replace(tmp, folder / "works.csv")
    return out


def audio_main(args) -> dict:
    """``build-index --audio`` with both engines on the same folder (see the module doc)."""
    import torch

    from coversearch import api
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.index.bundle import load_bundle

    folder = Path(args.audio)
    if not (folder / "works.csv").is_file():
        make_songs(folder, args.songs, args.seconds)
    songs = sorted(folder.glob("*.mp3"))
    audio_s = 0.0
    from coversearch.audio.decode import load_audio

    for f in songs:
        audio_s += load_audio(f).size / 44100
    t_all = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=".bench-ray-audio-", dir=folder.resolve().parent))
    rows, bundles = [], {}
    try:
        for engine in args.order.split(","):
            torch.set_num_threads(2)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            out = api.build_index(audio=folder, features_dir=work / f"features-{engine}", index_dir=work / f"index-{engine}",
                                  model=args.model, engine=engine, jobs=2, progress=False, log=lambda *_: None,
                                  works=folder / "works.csv", ray_timeout=3 * 3600)
            t1 = time.perf_counter()
            s = out["seconds"]
            b = load_bundle(work / f"index-{engine}")
            bundles[engine] = (b.items.column("perf_id").to_pylist(), np.asarray(b.vectors),
                               b.items.column("work_id").to_pylist())
            row = {"engine": engine, "songs": len(songs), "audio_s": round(audio_s, 1),
                   "load_at_start": round(load, 1), "total_s": round(t1 - t0, 1),
                   "songs_per_s": round(len(songs) / (t1 - t0), 2),
                   "x_real_time": round(audio_s / (t1 - t0), 1)}
            r = b.manifest.extra.get("ray", {}).get("seconds", {})
            row.update({"extract_and_prepare_s": s["prepare"] if engine == "local" else None,
                        "embed_s": s["embed"] if engine == "local" else None,
                        "ray_start_s": r.get("start"), "pipeline_s": r.get("pipeline"), "collect_s": r.get("collect"),
                        "index_s": s["index"]})
            rows.append(row)
            print(row, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (ids_l, vec_l, works_l), (ids_r, vec_r, _) = bundles["local"], bundles["ray"]
    same = {"items_identical": ids_l == ids_r, "max_abs_vector_diff": float(np.abs(vec_l - vec_r).max()),
            "map_local": retrieval_metrics(vec_l, np.array(works_l))["map"],
            "map_ray": retrieval_metrics(vec_r, np.array(works_l))["map"]}
    loc = next(r for r in rows if r["engine"] == "local")
    ray = next(r for r in rows if r["engine"] == "ray")
    overhead = {"ray_start_s": ray["ray_start_s"], "ray_minus_local_s": round(ray["total_s"] - loc["total_s"], 1),
                "ray_over_local": round(ray["total_s"] / loc["total_s"], 2)}
    print(table(rows, title=f"build-index --audio: Ray vs local, {len(songs)} songs ({audio_s:.0f} s of audio)"))
    print(same)
    print(overhead)
    return write_result("ray_audio", {"rows": rows, "equality": same, "overhead": overhead},
                        args=vars(args), seconds=time.perf_counter() - t_all)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "benchmark-standard-s2026-h4096-n600"))
    ap.add_argument("--model", default=None, help="encoder (default: shipped)")
    ap.add_argument("--feature", default="hpcp")
    ap.add_argument("--order", default="local,ray", help="which path runs first")
    ap.add_argument("--audio", default=None, help="a folder of audio: compare build-index --audio (filled if empty)")
    ap.add_argument("--songs", type=int, default=20, help="with --audio: songs to generate into an empty folder")
    ap.add_argument("--seconds", type=float, default=30.0, help="with --audio: length of each generated song")
    args = ap.parse_args(argv)
    if args.audio:
        return audio_main(args)
    t_all = time.perf_counter()
    import torch

    from coversearch.data.layout import find_performances
    from coversearch.evaluate.retrieval import retrieval_metrics
    from coversearch.features.cache import build_cache
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.scale.ray_build import EMBED_CPUS, READ_CPUS, run_pipeline

    data = Path(args.data)
    if not (data / ".coversearch-synth.json").is_file() and not any(data.glob("da-tacos_*")):
        raise SystemExit(f"no data set at {data}")
    net, info = load_checkpoint(args.model)
    entries = find_performances(data, args.feature)
    n = len(entries)
    work = Path(tempfile.mkdtemp(prefix="bench-ray-", dir=DATA))
    out, rows = {}, []
    try:
        for path in args.order.split(","):
            load = os.getloadavg()[0]
            if path == "local":
                torch.set_num_threads(2)
                c0, t0 = cpu_s(), time.perf_counter()
                cache, _ = build_cache(data, args.feature, cache_path=work / "prepared.arrow", jobs=2, progress=False)
                c1, t1 = cpu_s(), time.perf_counter()
                vec = embed_sequences(net, cache.sequences(), batch_size=8)
                c2, t2 = cpu_s(), time.perf_counter()
                out["local"] = (cache.perf_ids, vec)
                rows.append({"path": "local", "n": n, "load_at_start": round(load, 1), "start_s": 0.0,
                             "read_prepare_s": round(t1 - t0, 1), "embed_s": round(t2 - t1, 1),
                             "total_s": round(t2 - t0, 1), "perf_per_s": round(n / (t2 - t0), 1),
                             "read_cpu_ms_per_perf": round(1000 * (c1 - c0) / n, 2),
                             "embed_cpu_ms_per_perf": round(1000 * (c2 - c1) / n, 2)})
            else:
                t0 = time.perf_counter()
                r = run_pipeline(entries, model_path=info["path"], model_hash=info["model_hash"], feature=args.feature,
                                 shard_dir=work / "shards", timeout=3 * 3600)
                t1 = time.perf_counter()
                out["ray"] = (r.columns["perf_id"], r.vectors)
                s = r.seconds
                rows.append({"path": "ray", "n": n, "load_at_start": round(load, 1), "start_s": s["start"],
                             "read_prepare_s": None, "embed_s": None, "pipeline_s": s["pipeline"],
                             "collect_s": s["collect"], "total_s": round(t1 - t0, 1),
                             "perf_per_s": round(n / (t1 - t0), 1),
                             "perf_per_s_excl_start": round(n / (t1 - t0 - s["start"]), 1)})
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ids_l, vec_l = out["local"]
    ids_r, vec_r = out["ray"]
    labels = np.array([e.work_id for e in entries])
    same = {"items_identical": ids_l == ids_r, "max_abs_vector_diff": float(np.abs(vec_l - vec_r).max()),
            "map_local": retrieval_metrics(vec_l, labels)["map"], "map_ray": retrieval_metrics(vec_r, labels)["map"]}
    loc = next(r for r in rows if r["path"] == "local")
    ray = next(r for r in rows if r["path"] == "ray")
    overhead = {"ray_start_s": ray["start_s"], "ray_minus_local_s": round(ray["total_s"] - loc["total_s"], 1),
                "ray_over_local": round(ray["total_s"] / loc["total_s"], 2),
                "cpu_ms_per_perf_local": round(loc["read_cpu_ms_per_perf"] + loc["embed_cpu_ms_per_perf"], 2)}
    print(table(rows, title=f"Ray vs local, {n} performances of {data.name}"))
    print(same)
    print(overhead)
    return write_result("ray", {"rows": rows, "equality": same, "overhead": overhead, "model_hash": info["model_hash"],
                                "ray_plan": {"local_cpus": 2, "read_cpus": READ_CPUS, "embed_cpus": EMBED_CPUS,
                                             "embed_actors": 1}},
                        args=vars(args), seconds=time.perf_counter() - t_all)


if __name__ == "__main__":
    main()
