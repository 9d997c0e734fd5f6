"""``generate``: the synthetic Da-TACOS, end to end (profile -> files + metadata).

Each work is generated from its own seed derived from (seed, work number),
each performance from (seed, work number, version index, variation), so the
output does not depend on ``jobs`` or on which other works are generated.
Workers (``multiprocessing`` spawn context) configure essentia once each.

Two analyses (``ANALYSES``), the same rendered audio under both:

- ``fast`` (the default; every shipped set, the encoder and the benchmarks
  use it): features computed at the rendering rate, 11,025 Hz (``render.py``).
- ``essentia``: the audio upsampled to 44.1 kHz (``render.upsample``) and its
  features computed by ``coversearch.audio.extract.extract_array``, the
  function ``coversearch extract`` runs on a decoded file: HPCP with the
  Da-TACOS chain at 44.1 kHz, chroma_cens with librosa's own definition. Its
  h5 equal what ``extract`` gives for ``performance_audio(...,
  analysis="essentia")`` written losslessly. Hop 512 only (extract's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from coversearch._io import write_bytes_atomic
from coversearch.config import DATASET_OF_FEATURE, FEATURES
from coversearch.synth.config import VARIATIONS, VariationConfig, variation_config
from coversearch.synth.music import compose_work, perform, random_artist
from coversearch.synth.profiles import get_profile, membership
from coversearch.data.writer import (perf_paths, write_metadata, write_performance,
                                            write_performance_from_parts)
from coversearch.errors import ConfigError

LAYOUTS = ("per-feature", "single-files", "both")
ANALYSES = ("fast", "essentia")
# written last: its presence means the data set is complete (api.ensure_demo_data checks it)
MARKER = ".coversearch-synth.json"
# written first: the options of the run, so that a rerun resumes only the same generation
OPTIONS = ".coversearch-synth-options.json"
# bump when a change to the generator changes its output for a given seed
GENERATOR_VERSION = "2"
_VAR_CODE = {"standard": 0, "wide": 1}
_SUFFIX = ("", "", "", "", "", " (Live)", " (Acoustic)", " - Remastered", " (Live at the BBC)", " [Demo]")

_EXTRACTOR = None


def _extractor():
    global _EXTRACTOR
    if _EXTRACTOR is None:
        from coversearch.synth.render import Extractor

        _EXTRACTOR = Extractor()
    return _EXTRACTOR


def _num(ident: str) -> int:
    return int(ident.split("_", 1)[1])


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def generate_work(task: dict) -> dict:
    """Generate and write every performance of one work (runs in a worker).

    Args:
        task: work_id, perf_ids, seed, hop, features, layout, subset, root,
            variation (a VariationConfig), max_seconds, min_seconds, analysis
            (``ANALYSES``; absent = fast).

    Returns:
        ``{"work_id", "records": {perf_id: metadata}, "cpu": seconds,
        "audio_seconds": float, "kinds": [str]}``.
    """
    from coversearch.synth.render import SR, cens, crema_like, render_audio

    t_cpu = time.process_time()
    cfg: VariationConfig = task["variation"]
    wnum = _num(task["work_id"])
    seed = task["seed"]
    hop = task["hop"]
    feats = task["features"]
    work = compose_work(np.random.default_rng([seed, wnum]), task["work_id"])
    ex = _extractor()
    records, audio_s, kinds, skipped = {}, 0.0, [], 0
    for vi, pid in enumerate(task["perf_ids"]):
        r_perf, r_audio, r_feat, r_meta = _streams(seed, wnum, vi, cfg)
        perf = perform(work, r_perf, cfg, original=(vi == 0), max_seconds=task["max_seconds"],
                       min_seconds=task["min_seconds"])
        targets = perf_paths(Path(task["root"]), task["subset"], task["work_id"], pid, task["layout"], feats)
        if all(p.is_file() for p, _ in targets):
            # resuming an interrupted run with the same options: files are written
            # atomically and deterministically, so an existing one is final
            records[pid] = _record(work, perf, pid, r_meta, vi == 0)
            kinds.append(perf.kind)
            skipped += 1
            continue
        audio, lead = render_audio(perf, r_audio, cfg)
        audio_s += audio.size / SR
        arrays = {}
        if task.get("analysis", "fast") == "essentia":
            arrays, n = _essentia_features(audio, feats)
        else:
            hp, ch = ex.features(audio, hop, "hpcp" in feats, "cens" in feats)
            n = (hp if hp is not None else ch).shape[0] if (hp is not None or ch is not None) \
                else audio.size // (hop // 4) + 1
            if "hpcp" in feats:
                arrays["hpcp"] = hp.astype(np.float32)
            if "cens" in feats:
                arrays["chroma_cens"] = cens(ch, hop)
        if "crema" in feats:
            # CREMA output is one frame shorter than the others in the real files
            cr = crema_like(perf, lead, n - 1, hop, r_feat)
            arrays["crema"] = cr if task["subset"] == "benchmark" else np.ascontiguousarray(cr.T)
        parts = {}
        for path, fs in perf_paths(Path(task["root"]), task["subset"], task["work_id"], pid, task["layout"], feats):
            single = "single_files" in path.parent.parent.name
            key = perf.key if single else None  # single files carry the key group, as real
            if single and len(parts) == len(fs):
                # layout "both": reuse the per-feature files' compressed chunks
                write_performance_from_parts(path, task["work_id"], pid, parts, hop=hop, key=key)
                continue
            sub = {DATASET_OF_FEATURE[f]: arrays[DATASET_OF_FEATURE[f]] for f in fs}
            write_performance(path, task["work_id"], pid, sub, hop=hop, key=key)
            if not single:
                parts[DATASET_OF_FEATURE[fs[0]]] = path
        records[pid] = _record(work, perf, pid, r_meta, vi == 0)
        kinds.append(perf.kind)
    return {"work_id": task["work_id"], "records": records, "cpu": time.process_time() - t_cpu,
            "audio_seconds": audio_s, "kinds": kinds, "skipped": skipped}


def _essentia_features(audio: np.ndarray, feats) -> tuple[dict[str, np.ndarray], int]:
    """``analysis="essentia"``: features of the 11,025 Hz rendering as ``extract`` computes them.

    Returns:
        ({dataset name: frames}, T): hpcp (T, 12) float32 with T essentia's
        ``ceil(4 N / 512) + 1``; chroma_cens (T', 12) float64; T is the frame
        count crema follows (as in the default analysis).
    """
    from coversearch.audio.extract import extract_array
    from coversearch.synth.render import upsample

    a44 = upsample(audio)
    asked = [f for f in ("hpcp", "cens") if f in feats]
    got = extract_array(a44, asked) if asked else {}
    arrays = {DATASET_OF_FEATURE[f]: got[f] for f in asked}
    n = next(iter(got.values())).shape[0] if got else a44.size // 512 + 1
    return arrays, n


def _streams(seed: int, wnum: int, vi: int, cfg: VariationConfig) -> list[np.random.Generator]:
    """The four random streams of one performance: (perform, audio, features, metadata)."""
    return np.random.default_rng([seed, wnum, vi, _VAR_CODE.get(cfg.name, 9)]).spawn(4)


def performance_audio(work_id: str, version: int, *, profile: str = "demo", seed: int = 0,
                      variation: str | VariationConfig = "standard", max_seconds: float | None = None,
                      analysis: str = "fast"):
    """The audio ``generate`` renders for one performance, before its features.

    Same streams as ``generate_work``, so extracting features from this audio
    reproduces what the generator wrote (the consistency test of
    ``coversearch extract``).

    Args:
        work_id: a work of the generated set, e.g. ``W_22``.
        version: index of the performance in its work (0 = the original).
        profile, seed, variation, max_seconds, analysis: as given to :func:`generate`.

    Returns:
        (audio, sample_rate): (N,) float32 mono at 11,025 Hz and 11025 (fast),
        or the audio the ``essentia`` analysis reads: (4 N,) float32 at
        44,100 Hz and 44100.
    """
    from coversearch.synth.render import ANALYSIS_SR, SR, render_audio, upsample

    if analysis not in ANALYSES:
        raise ConfigError(f"unknown analysis {analysis!r}: choose one of {', '.join(ANALYSES)}")

    prof = get_profile(profile)
    cfg = variation_config(variation) if isinstance(variation, str) else variation
    cap = max_seconds if max_seconds is not None else prof.max_seconds
    min_s = min(prof.min_seconds, cap) if cap else prof.min_seconds
    wnum = _num(work_id)
    work = compose_work(np.random.default_rng([seed, wnum]), work_id)
    r_perf, r_audio, _, _ = _streams(seed, wnum, version, cfg)
    perf = perform(work, r_perf, cfg, original=(version == 0), max_seconds=cap, min_seconds=min_s)
    audio, _ = render_audio(perf, r_audio, cfg)
    if analysis == "essentia":
        return upsample(audio), ANALYSIS_SR
    return audio, SR


def _record(work, perf, pid: str, r_meta: np.random.Generator, orig: bool) -> dict:
    """The metadata record of one performance, with every field of the real ones."""
    perf_artist = work.artist if orig or r_meta.random() < 0.1 else random_artist(r_meta)
    year = work.year if orig else int(min(2019, work.year + r_meta.integers(0, 45)))
    title = work.title + ("" if orig else _SUFFIX[int(r_meta.integers(len(_SUFFIX)))])
    ms = int(round(perf.duration * 1000))
    return {
        "work_title": work.title,
        "work_artist": work.artist,
        "perf_title": title,
        "perf_artist": perf_artist,
        "release_year": str(year),
        "work_id": work.work_id,
        "perf_id": pid,
        "instrumental": "Yes" if perf.instrumental else "No",
        "perf_artist_mbid": _uuid(r_meta),
        "mb_performances": {_uuid(r_meta): {"length": str(ms)}},
    }


def _check(features, hop, layout, jobs, analysis="fast"):
    feats = tuple(features)
    bad = [f for f in feats if f not in FEATURES]
    if bad or not feats:
        raise ConfigError(f"unknown feature(s) {bad or feats}: choose from {', '.join(FEATURES)}")
    if hop % 4 or not 128 <= hop <= 16384:
        raise ConfigError(f"--hop must be a multiple of 4 between 128 and 16384, got {hop}")
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if analysis not in ANALYSES:
        raise ConfigError(f"unknown analysis {analysis!r}: choose one of {', '.join(ANALYSES)}")
    if analysis == "essentia":
        from coversearch.config import DEFAULT_HOP

        if hop != DEFAULT_HOP:
            raise ConfigError(f"--analysis essentia computes features as `extract` does, at hop {DEFAULT_HOP}; "
                              f"got --hop {hop}")
        if "cens" in features:
            from coversearch.audio.extract import check_features

            check_features(["cens"])  # librosa installed, or one line saying how to get it
    return tuple(f for f in FEATURES if f in feats)


def generate(out_dir: str | os.PathLike, profile: str = "demo", seed: int = 0,
             features=("hpcp", "crema", "cens"), hop: int = 512, layout: str = "both", jobs: int = 1,
             variation: str | VariationConfig = "standard", n_works: int | None = None, progress: bool = True,
             max_seconds: float | None = None, analysis: str = "fast") -> dict:
    """Generate a synthetic Da-TACOS data set under ``out_dir``.

    Args:
        out_dir: root folder (created); receives ``da-tacos_{subset}_subset_*``
            folders, ``da-tacos_metadata/`` and, last, the summary
            ``.coversearch-synth.json`` (its presence marks a complete set).
        profile: demo, benchmark or train.
        seed: generation seed; same seed -> identical arrays and metadata.
        features: any of hpcp, crema, cens.
        hop: frame hop in samples at 44.1 kHz (512 = real Da-TACOS); other
            hops are recorded in the root attribute ``hop_length``.
        layout: per-feature, single-files or both.
        jobs: worker processes (results do not depend on it).
        variation: standard (training setting) or wide (held-out setting), or
            a ``VariationConfig`` (ablations: its ``name`` picks the random
            streams, so a modified ``standard`` is paired with ``standard``).
        n_works: override the profile's number of works.
        progress: show a tqdm progress bar on stderr.
        max_seconds: cap every version's length (tests and quick sets).
        analysis: ``fast`` (default: features at the 11,025 Hz rendering
            rate) or ``essentia`` (the audio upsampled to 44.1 kHz and
            analysed by ``extract``'s own function; hop 512 only; about 2x
            the CPU). See the module docstring.

    Raises:
        ConfigError: a bad option, or ``out_dir`` holds a generation made with
            other options (a rerun with the same options resumes it).

    Returns:
        Summary dict: profile, subset, variation, seed, hop, features, layout,
        n_works, n_performances, resumed (already on disk from an interrupted
        run with the same options), generator_version, seconds (wall), cpu_seconds,
        cpu_per_performance, audio_hours, kinds (share of version kinds),
        roots (folders written), metadata (path).
    """
    feats = _check(features, hop, layout, jobs, analysis)
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"--max-seconds must be > 0, got {max_seconds}")
    prof = get_profile(profile)
    cfg = variation_config(variation) if isinstance(variation, str) else variation
    if not isinstance(cfg, VariationConfig):
        raise ConfigError(f"unknown variation {variation!r}: choose one of {', '.join(VARIATIONS)}")
    works = membership(prof, seed, n_works)  # checks --n-works before any folder is made
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    cap = max_seconds if max_seconds is not None else prof.max_seconds
    options = {"generator_version": GENERATOR_VERSION, "profile": profile, "seed": seed, "features": list(feats),
               "hop": hop, "layout": layout, "n_works": len(works), "max_seconds": cap,
               "variation": dataclasses.asdict(cfg)}
    if analysis != "fast":  # absent = fast: folders generated before the option resume unchanged
        options["analysis"] = analysis
    options = json.loads(json.dumps(options))  # tuples -> lists, as read back
    opt_path = root / OPTIONS
    if opt_path.is_file():
        old = json.loads(opt_path.read_text())
        if old != options:
            diff = sorted(k for k in options if old.get(k) != options[k])
            raise ConfigError(f"{root} holds a generation with other options ({', '.join(diff)}); "
                              f"use an empty folder or the same options to resume")
    else:
        write_bytes_atomic(opt_path, (json.dumps(options, indent=2) + "\n").encode())
    tasks = [dict(work_id=w, perf_ids=p, seed=seed, hop=hop, features=feats, layout=layout,
                  subset=prof.subset, root=str(root), variation=cfg, max_seconds=cap,
                  min_seconds=min(prof.min_seconds, cap) if cap else prof.min_seconds, analysis=analysis)
             for w, p in works]
    n_perf = sum(len(p) for _, p in works)
    t0 = time.time()
    results = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_perf, unit="perf", desc=f"synth {profile}", smoothing=0.05)
    try:
        if jobs == 1:
            for t in tasks:
                r = generate_work(t)
                results[r["work_id"]] = r
                if bar:
                    bar.update(len(r["records"]))
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(jobs) as pool:
                for r in pool.imap_unordered(generate_work, tasks, chunksize=1):
                    results[r["work_id"]] = r
                    if bar:
                        bar.update(len(r["records"]))
    finally:
        if bar:
            bar.close()
    metadata = {w: results[w]["records"] for w, _ in works}
    meta_path = write_metadata(root, prof.subset, metadata)
    cpu = sum(r["cpu"] for r in results.values())
    kinds: dict[str, int] = {}
    for r in results.values():
        for k in r["kinds"]:
            kinds[k] = kinds.get(k, 0) + 1
    roots = sorted({str(p.parent.parent) for w, ps in works[:1]
                    for p, _ in perf_paths(root, prof.subset, w, ps[0], layout, feats)})
    summary = {
        "profile": profile, "subset": prof.subset, "variation": cfg.name, "seed": seed, "hop": hop,
        "features": list(feats), "layout": layout, "analysis": analysis, "jobs": jobs, "n_works": len(works),
        "n_performances": n_perf, "resumed": sum(r["skipped"] for r in results.values()),
        "generator_version": GENERATOR_VERSION, "seconds": round(time.time() - t0, 2), "cpu_seconds": round(cpu, 2),
        "cpu_per_performance": round(cpu / max(1, n_perf - sum(r["skipped"] for r in results.values())), 4),
        "audio_hours": round(sum(r["audio_seconds"] for r in results.values()) / 3600, 3),
        "kinds": {k: round(v / max(1, n_perf), 3) for k, v in sorted(kinds.items())},
        "roots": roots, "metadata": str(meta_path),
    }
    write_bytes_atomic(root / MARKER, (json.dumps(summary, indent=2) + "\n").encode())
    return summary
