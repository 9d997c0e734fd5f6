"""Audio input: extraction speed (decode and HPCP separately, x real time per
core), the whole ``coversearch query --audio`` wall time for a 4-minute song,
and the consistency of ``extract`` with the generator's own HPCP.

The song: the generator's audio (demo profile, seed 0) of successive
performances of W_22 joined to exactly 240 s (synthetic music: its spectra
carry noise, so SpectralPeaks finds as many peaks per frame as in real
recordings; ~80 of the 100 allowed), written at 44.1 kHz as mp3 (192 kbps),
wav (16-bit) and, at 48 kHz, flac (so decoding includes resampling).

- decode: CPU seconds of ``audio.decode.load_audio`` (FFmpeg in essentia,
  resampling to 44.1 kHz mono), best of 3.
- HPCP: CPU seconds of ``audio.hpcp.HpcpExtractor.hpcp`` on the decoded
  audio (the Da-TACOS chain), best of 3; beside it the same chain written
  frame by frame as acoss did (``reference_hpcp``), once.
- cens: librosa's chroma_cens (after a warm-up call), once, when installed.
- query: wall time of the process ``coversearch query --audio song.mp3 --k 10``
  (and with ``--rerank``), median of 3 after one warm-up run, against a small
  index built with ``build-index --audio`` from 6 generated 30-s files
  (search time is negligible at any catalogue size next to extraction; the
  flat search of 15,000 items is 0.4 ms, see bench_query). The CPU time
  (user + sys of the process and its forked analysis child, from
  ``getrusage``) is reported too: on a shared, loaded machine the wall time
  measures the queue for a core. The query analyses its audio in a forked
  child while the parent imports torch/FAISS/pyarrow and loads the model and
  index (``coversearch._background``), so one more run records the two
  halves' CPU: the parent's until it waits for the child, the child's, and
  the parent's after (embedding, search, output). On an idle 2-core machine
  the wall time is about ``max(parent before, child) + parent after``
  (``critical_path_s``, an estimate; the interpreter's start is in the first).
- consistency: one whole demo performance generated to h5 under each of the
  generator's analyses (``fast``, the default, and ``essentia``) and its audio
  written as wav, flac and mp3, extracted, compared frame by frame and by
  embedding; and the generator's CPU per performance under each (skipped
  with ``--quick``; alone with ``--consistency-only``).

"Per core": CPU time of one process (essentia and numpy run single-threaded
here; torch is set to 1 thread for the in-process parts).

Usage::

    python benchmarks/bench_audio.py [--quick | --consistency-only]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, table, write_result  # noqa: E402

SONG_SECONDS = 240.0


def _write(path: Path, audio: np.ndarray, sr: int, out_sr: int, fmt: str) -> Path:
    from coversearch.audio.decode import essentia_standard

    es = essentia_standard()
    if out_sr != sr:
        audio = es.Resample(inputSampleRate=sr, outputSampleRate=out_sr, quality=0)(audio)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    es.MonoWriter(filename=str(tmp), format=fmt, sampleRate=out_sr, bitrate=192)(np.asarray(audio, np.float32))
    os.replace(tmp, path)
    return path


def make_song(folder: Path) -> dict[str, Path]:
    """The 4-minute song in three files (reused when present)."""
    from coversearch.synth.generate import performance_audio

    files = {"mp3 44.1k": folder / "song.mp3", "wav 44.1k": folder / "song.wav", "flac 48k": folder / "song.flac"}
    if all(p.is_file() for p in files.values()):
        return files
    parts, total, v = [], 0, 0
    while total < SONG_SECONDS * 11025:
        a, sr = performance_audio("W_22", v, max_seconds=None)
        parts.append(a)
        total += a.size
        v += 1
    song = np.concatenate(parts)[: int(SONG_SECONDS * sr)]
    _write(files["mp3 44.1k"], song, sr, 44100, "mp3")
    _write(files["wav 44.1k"], song, sr, 44100, "wav")
    _write(files["flac 48k"], song, sr, 48000, "flac")
    return files


def _cpu(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        c0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - c0)
    return best, out


def speed(files: dict[str, Path], repeat: int) -> list[dict]:
    from coversearch.audio.decode import load_audio
    from coversearch.audio.hpcp import HpcpExtractor, reference_hpcp

    ex = HpcpExtractor()
    rows = []
    audio = None
    for name, f in files.items():
        t, audio = _cpu(lambda: load_audio(f), repeat)
        rows.append({"stage": f"decode {name}", "cpu_s": t, "x_real_time_per_core": SONG_SECONDS / t})
    t, hp = _cpu(lambda: ex.hpcp(audio), repeat)
    rows.append({"stage": "HPCP (coversearch extractor)", "cpu_s": t, "x_real_time_per_core": SONG_SECONDS / t,
                 "frames": hp.shape[0], "us_per_frame": t / hp.shape[0] * 1e6})
    t, ref = _cpu(lambda: reference_hpcp(audio), 1)
    rows.append({"stage": "HPCP (acoss frame-by-frame chain)", "cpu_s": t, "x_real_time_per_core": SONG_SECONDS / t,
                 "frames": ref.shape[0], "us_per_frame": t / ref.shape[0] * 1e6,
                 "max_abs_diff_vs_ours": float(np.abs(ref - hp).max())})
    try:
        from coversearch.audio.extract import cens

        cens(audio[:44100 * 5])  # warm-up: librosa compiles with numba on first use
        t, c = _cpu(lambda: cens(audio), 1)
        rows.append({"stage": "chroma_cens (librosa)", "cpu_s": t, "x_real_time_per_core": SONG_SECONDS / t,
                     "frames": c.shape[0], "us_per_frame": t / c.shape[0] * 1e6})
    except ImportError:
        pass
    return rows


def query_wall(song: Path, folder: Path, repeat: int) -> list[dict]:
    """Wall time of the whole CLI process (subprocess) for --audio, plain and --rerank."""
    from coversearch.synth.generate import performance_audio

    music = folder / "index-music"
    for w in ("W_18", "W_26", "W_92", "W_132", "W_218", "W_22"):
        p = music / f"{w}.wav"
        if not p.is_file():
            a, sr = performance_audio(w, 1 if w == "W_22" else 0, max_seconds=30)
            _write(p, a, sr, sr, "wav")
    idx = folder / "index"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    exe = [str(Path(sys.executable).with_name("coversearch"))]  # the console script, as a user runs it
    from coversearch.index.sequences import SEQUENCES

    manifest = idx / "manifest.json"  # rebuilt if absent or older than the stored re-rank sequences
    if not manifest.is_file() or SEQUENCES not in json.loads(manifest.read_text()).get("files", {}):
        subprocess.run(exe + ["build-index", "--audio", str(music), "--index-dir", str(idx), "--features-dir",
                              str(folder / "index-features"), "--quiet", "--jobs", "1"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    rows = []
    for extra in ([], ["--rerank"]):
        cmd = exe + ["query", "--audio", str(song), "--k", "10", "--index-dir", str(idx), "--json"] + extra
        times, cpus = [], []
        for i in range(repeat + 1):
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            if r.returncode:
                raise SystemExit(f"query failed: {r.stderr.strip().splitlines()[-1]}")
            if i:  # the first run warms the page cache
                times.append(dt)
                cpus.append(cpu)
        top = json.loads(r.stdout)["results"][0]
        rows.append({"command": "query --audio song.mp3 --k 10" + (" --rerank" if extra else ""),
                     "wall_s_median": statistics.median(times), "wall_s_max": max(times),
                     "cpu_s_median": statistics.median(cpus), "runs": len(times),
                     "top_result": top["perf_title"]})
    return rows


SPLIT = r"""
import json, resource, sys, time
from coversearch import _background
marks = {}
real = _background.Pending.result
def result(self):
    marks["parent_before_s"] = time.process_time()
    marks["forked"] = self.pid is not None
    try:
        return real(self)
    finally:
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        marks["child_s"] = c.ru_utime + c.ru_stime
        marks["after_mark"] = time.process_time()
_background.Pending.result = result
from coversearch.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
marks["parent_after_s"] = time.process_time() - marks.pop("after_mark")
print(json.dumps(marks), file=sys.stderr)
"""


def query_split(song: Path, folder: Path, repeat: int) -> dict:
    """CPU of the two halves of ``query --audio`` (see the module doc), median of ``repeat`` runs."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = []
    for _ in range(repeat):
        r = subprocess.run([sys.executable, "-c", SPLIT, "query", "--audio", str(song), "--k", "10", "--index-dir",
                            str(folder / "index"), "--json"], env=env, capture_output=True, text=True)
        runs.append(json.loads(r.stderr.strip().splitlines()[-1]))
    out = {k: statistics.median(x[k] for x in runs) for k in ("parent_before_s", "child_s", "parent_after_s")}
    out["forked"] = all(x["forked"] for x in runs)
    out["critical_path_s"] = max(out["parent_before_s"], out["child_s"]) + out["parent_after_s"]
    out["cpu_sum_s"] = out["parent_before_s"] + out["child_s"] + out["parent_after_s"]
    return out


def _write_exact(path: Path, audio: np.ndarray, sr: int, subtype: str) -> Path:
    """A wav/flac of ``audio`` in a given sample format (soundfile: FLOAT, PCM_24, PCM_16)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    sf.write(str(tmp), np.asarray(audio, np.float32), sr, subtype=subtype)
    os.replace(tmp, path)
    return path


def consistency(folder: Path) -> tuple[list[dict], list[dict]]:
    """A whole demo performance: the generator's h5 vs extract of its audio, under both analyses.

    Returns:
        (rows, cost): per (analysis, file) the frame comparison and embedding
        distance; per analysis the generator's CPU seconds per performance of
        the whole demo work (hpcp only, and all three features).
    """
    import h5py

    from coversearch.audio.extract import extract_file
    from coversearch.features.prepare import prepare
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.synth import generate
    from coversearch.synth.generate import performance_audio

    net, _ = load_checkpoint(None)
    rows, cost = [], []
    for analysis in ("fast", "essentia"):
        root = folder / f"consistency-gen-{analysis}"
        s = generate(root, profile="demo", seed=0, n_works=1, features=("hpcp",), hop=512, layout="per-feature",
                     progress=False, analysis=analysis)
        s_all = generate(folder / f"consistency-gen-{analysis}-all", profile="demo", seed=0, n_works=1, hop=512,
                         layout="per-feature", progress=False, analysis=analysis)
        cost.append({"analysis": analysis, "performances": s["n_performances"],
                     "audio_s_per_performance": round(s["audio_hours"] * 3600 / s["n_performances"], 1),
                     "cpu_s_per_perf_hpcp": s["cpu_per_performance"],
                     "cpu_s_per_perf_all_features": s_all["cpu_per_performance"]})
        meta = json.loads(next((root / "da-tacos_metadata").glob("*.json")).read_text())
        work = next(iter(meta))
        pid = next(iter(meta[work]))
        with h5py.File(root / f"da-tacos_benchmark_subset_hpcp/{work}_hpcp/{pid}_hpcp.h5") as h:
            ref = h["hpcp"][:]
        audio, sr = performance_audio(work, 0, analysis=analysis)
        e_ref = embed_sequences(net, [prepare(ref, 512)], threads=1)[0]
        if analysis == "fast":
            files = [("wav (11,025 Hz, 16-bit)", _write(folder / "consistency.wav", audio, sr, sr, "wav")),
                     ("mp3 (44100 Hz, 192 kbps)", _write(folder / "consistency.mp3", audio, sr, 44100, "mp3"))]
        else:
            files = [("wav (44.1 kHz, float32)", _write_exact(folder / "consistency-e.wav", audio, sr, "FLOAT")),
                     ("flac (44.1 kHz, 24-bit)", _write_exact(folder / "consistency-e.flac", audio, sr, "PCM_24")),
                     ("wav (44.1 kHz, 16-bit)", _write_exact(folder / "consistency-e16.wav", audio, sr, "PCM_16")),
                     ("mp3 (44.1 kHz, 192 kbps)", _write(folder / "consistency-e.mp3", audio, sr, sr, "mp3"))]
        for label, path in files:
            got = extract_file(path)["hpcp"]
            n = min(len(got), len(ref))
            d = np.abs(got[:n] - ref[:n])
            rows.append({"analysis": analysis, "performance": f"{work} v0 ({pid})", "file": label, "seconds": round(audio.size / sr, 1),
                         "frames": f"{len(got)} vs {len(ref)}",
                         "correlation": float(np.corrcoef(got[:n].ravel(), ref[:n].ravel())[0, 1]),
                         "mean_abs_diff": float(d.mean()),
                         "p99_frame_max_diff": float(np.percentile(d.max(axis=1), 99)),
                         "max_abs_diff": float(d.max()),
                         "embedding_cosine_distance":
                             1 - float(embed_sequences(net, [prepare(got, 512)], threads=1)[0] @ e_ref)})
    return rows, cost


def _print_consistency(crows: list[dict], cost: list[dict]) -> None:
    print(table(crows, ["analysis", "performance", "file", "seconds", "frames", "correlation", "mean_abs_diff", "p99_frame_max_diff",
                        "max_abs_diff", "embedding_cosine_distance"], title="\nextract vs the generator's own h5"))
    print(table(cost, ["analysis", "performances", "audio_s_per_performance", "cpu_s_per_perf_hpcp",
                       "cpu_s_per_perf_all_features"], title="\nthe generator's CPU per performance (the first demo work, n_works=1)"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat, no consistency run (~2 min)")
    ap.add_argument("--dir", type=Path, default=DATA / "bench-audio", help="generated inputs (reused)")
    ap.add_argument("--consistency-only", action="store_true",
                    help="only the consistency run (both generator analyses; ~3 min), into audio_consistency.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if args.consistency_only:
        crows, cost = consistency(args.dir)
        _print_consistency(crows, cost)
        write_result("audio_consistency", {"consistency": crows, "generator_cost": cost,
                                           "load_average_end": os.getloadavg()},
                     args={"consistency_only": True}, seconds=time.perf_counter() - t0)
        return
    repeat = 1 if args.quick else 3
    files = make_song(args.dir)
    rows = speed(files, repeat)
    print(table(rows, ["stage", "cpu_s", "x_real_time_per_core", "us_per_frame"],
                title=f"extraction of a {SONG_SECONDS:.0f}-s song, CPU time of one process"))
    qrows = query_wall(files["mp3 44.1k"], args.dir, repeat)
    print(table(qrows, ["command", "wall_s_median", "wall_s_max", "cpu_s_median", "runs"],
                title="\nwhole process: wall time, and its CPU time (user + sys, with its forked child; "
                      "about the wall time on one idle core)"))
    split = query_split(files["mp3 44.1k"], args.dir, repeat)
    print(table([split], ["parent_before_s", "child_s", "parent_after_s", "critical_path_s", "cpu_sum_s", "forked"],
                title="\nquery --audio: CPU of its halves (parent until it waits, interpreter start included / forked "
                      "child / parent after); critical path = about the wall time on 2 idle cores"))
    crows, cost = ([], []) if args.quick else consistency(args.dir)
    if crows:
        _print_consistency(crows, cost)
    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.1f} (2 cores)")
    write_result("audio", {"song_seconds": SONG_SECONDS, "extraction": rows, "query": qrows, "query_split": split,
                           "consistency": crows, "generator_cost": cost,
                           "load_average_end": load},
                 args={"quick": args.quick}, seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
