"""The ``extract`` job: audio files and folders -> a Da-TACOS root (benchmark naming).

Output under ``OUT``::

    da-tacos_benchmark_subset_{hpcp,cens}/W_<w>_{feat}/P_<p>_{feat}.h5
    da-tacos_metadata/da-tacos_benchmark_subset_metadata.json
    .coversearch-extract.json        (sidecar: what is done, for resuming)

Ids are deterministic, so a rerun, another machine or ``query --audio`` name
the same recording alike. The *key* of a file is its path relative to the
folder given on the command line, prefixed with that folder's name
(``music/album/01.flac``), or its bare file name when the file itself was
given. ``P_<n>`` with ``n = 10**15 + int(sha256(key)[:12], 16)``: 16-digit
numbers, which never collide with Da-TACOS (< 10**7) or generator ids. One
work per file, ``W_<n>`` from the same key, unless ``--works CSV`` groups
files (``path,work_id`` rows; a ``W_<int>`` id is kept, any other label is
hashed the same way and kept as the work title).

Resuming: the sidecar records, per performance, the source path, size and
mtime, the features written and the tags read. A file whose record matches
and whose outputs exist is skipped; every h5 file and the sidecar are written
to a temporary name and renamed, so an interrupted run leaves complete files
only. The metadata JSON is rebuilt from the sidecar at the end of each run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from pathlib import Path

from coversearch._io import write_bytes_atomic, write_json_atomic
from coversearch.audio.decode import AUDIO_EXTENSIONS, check_audio_path
from coversearch.config import DATASET_OF_FEATURE, DEFAULT_HOP, SAMPLE_RATE
from coversearch.errors import ConfigError, CoversearchError, DataError

SUBSET = "benchmark"
SIDECAR = ".coversearch-extract.json"
SIDECAR_VERSION = 1
_W_ID = re.compile(r"^W_\d+$")


def id_number(key: str) -> int:
    """The 16-digit number of a key: 10**15 + the first 48 bits of its sha256."""
    return 10**15 + int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def perf_id_of(key: str) -> str:
    """``P_<n>`` of a file key (see the module doc)."""
    return f"P_{id_number(key)}"


def work_id_of(label: str) -> str:
    """``W_<n>``: a ``W_<int>`` label as it is, any other label hashed."""
    return label if _W_ID.match(label) else f"W_{id_number(label)}"


def find_audio(inputs) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """Audio files under ``inputs`` (files or folders, searched recursively).

    Returns:
        ([(path, key)], [(path, message)]) -- files found, sorted by key, and
        explicitly named files that cannot be used (missing, unsupported...).

    Raises:
        DataError: an input folder holds no audio file, or an input does not exist.
    """
    found: list[tuple[Path, str]] = []
    bad: list[tuple[str, str]] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not files:
                raise DataError(f"{p}: no audio files in this folder (looked for "
                                f"{', '.join(e[1:] for e in AUDIO_EXTENSIONS)}, recursively)")
            name = p.resolve().name or "root"
            found += [(f, f"{name}/{f.relative_to(p).as_posix()}") for f in files]
        elif not p.exists():
            raise DataError(f"{p}: no such file or folder")
        else:
            try:
                check_audio_path(p)
                found.append((p, p.name))
            except DataError as e:
                bad.append((str(p), str(e)))
    keys: dict[str, Path] = {}
    for f, key in found:
        if key in keys and keys[key].resolve() != f.resolve():
            raise ConfigError(f"two inputs get the same id (key {key!r}): {keys[key]} and {f}; "
                              f"give their common parent folder instead")
        keys[key] = f
    uniq = {key: f for f, key in found}
    return sorted(((f, k) for k, f in uniq.items()), key=lambda t: t[1]), bad


def read_works_csv(path: str | os.PathLike) -> dict[str, str]:
    """``path,work_id`` rows -> {resolved audio path: work label}.

    Relative paths are taken from the CSV's folder; a header row
    (``path,work_id``) is allowed.

    Raises:
        DataError: the CSV is missing or a row is malformed (line number named).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: works CSV not found")
    out: dict[str, str] = {}
    with open(p, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if i == 1 and [c.strip().lower() for c in row[:2]] == ["path", "work_id"]:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DataError(f"{p}:{i}: expected 'path,work_id', got {','.join(row)!r}")
            src = Path(row[0].strip())
            src = src if src.is_absolute() else p.parent / src
            out[str(src.resolve())] = row[1].strip()
    return out


def output_paths(root: Path, work_id: str, perf_id: str, features) -> dict[str, Path]:
    """{feature: h5 path} of one performance in the per-feature layout."""
    return {f: root / f"da-tacos_{SUBSET}_subset_{f}" / f"{work_id}_{f}" / f"{perf_id}_{f}.h5" for f in features}


def extract_task(task: dict) -> dict:
    """Decode, extract and write one file (runs in a worker process or a Ray task).

    Returns:
        ``{"perf_id", "src", "seconds", "tags", "decode_cpu", "features_cpu", "wall"}``,
        or ``{"perf_id", "src", "error"}`` for a file that cannot be used: it
        never raises for bad audio.
    """
    from coversearch.audio.decode import load_audio, read_tags
    from coversearch.audio.extract import extract_array
    from coversearch.data.writer import write_performance

    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        audio = load_audio(task["src"])
        t_dec = time.process_time() - c0
        arrays = extract_array(audio, task["features"])
        t_feat = time.process_time() - c0 - t_dec
        paths = output_paths(Path(task["out"]), task["work_id"], task["perf_id"], task["features"])
        for feat, arr in arrays.items():
            write_performance(paths[feat], task["work_id"], task["perf_id"], {DATASET_OF_FEATURE[feat]: arr},
                              hop=DEFAULT_HOP)
        tags = read_tags(task["src"])
    except CoversearchError as e:
        return {"perf_id": task["perf_id"], "src": task["src"], "error": str(e)}
    except (OSError, RuntimeError, ValueError, MemoryError) as e:
        return {"perf_id": task["perf_id"], "src": task["src"], "error": f"{task['src']}: failed ({type(e).__name__}: {e})"}
    return {"perf_id": task["perf_id"], "src": task["src"], "seconds": audio.size / SAMPLE_RATE, "tags": tags,
            "decode_cpu": t_dec, "features_cpu": t_feat, "wall": time.perf_counter() - t0}


def _load_sidecar(out: Path) -> dict:
    p = out / SIDECAR
    if not p.is_file():
        return {"version": SIDECAR_VERSION, "files": {}}
    try:
        data = json.loads(p.read_text())
        if data.get("version") != SIDECAR_VERSION or not isinstance(data.get("files"), dict):
            raise ValueError("unknown version")
        return data
    except (ValueError, OSError) as e:
        raise DataError(f"{p}: unreadable extract record ({e}); delete it to extract everything again") from None


def _metadata(files: dict) -> dict:
    """Da-TACOS metadata {work_id: {perf_id: record}} from the sidecar's records."""
    by_work: dict[str, list[tuple[str, dict]]] = {}
    for pid, rec in sorted(files.items(), key=lambda kv: kv[1]["key"]):
        by_work.setdefault(rec["work_id"], []).append((pid, rec))
    meta: dict[str, dict] = {}
    for wid, members in sorted(by_work.items()):
        first = members[0][1]
        label = first.get("work_label") or ""
        work_title = label if label and not _W_ID.match(label) else _title(first)
        meta[wid] = {}
        for pid, rec in members:
            t = rec.get("tags", {})
            meta[wid][pid] = {
                "work_title": work_title,
                "work_artist": first.get("tags", {}).get("artist", ""),
                "perf_title": _title(rec),
                "perf_artist": t.get("artist", ""),
                "release_year": t.get("year", ""),
                "work_id": wid,
                "perf_id": pid,
                "instrumental": "",
                "perf_artist_mbid": "",
                "mb_performances": {},
                "source": rec["source"],
            }
    return meta


def _title(rec: dict) -> str:
    return rec.get("tags", {}).get("title") or Path(rec["source"]).stem


class ExtractPlan:
    """What one ``extract`` run will do, and its bookkeeping (shared by the local job
    and ``build-index --audio --engine ray``, whose workers run the same tasks).

    Attributes:
        out: the Da-TACOS root written.
        features: canonical feature names asked for.
        files: ``[(path, key)]`` audio files found.
        bad: ``[(path, message)]`` files that could not be used (grows as results come in).
        tasks: one dict per file to (re-)extract, the argument of ``extract_task``.
        unchanged: files whose outputs are already complete.
    """

    def __init__(self, inputs, out, *, features=("hpcp",), works=None, skip_bad: bool = False):
        from coversearch.audio.extract import check_features

        self.features = check_features(features)
        if not inputs:
            raise ConfigError("give at least one audio file or folder")
        self.t0 = time.perf_counter()
        self.out = Path(out)
        self.skip_bad = skip_bad
        self.files, self.bad = find_audio(inputs)
        if self.bad and not skip_bad:
            raise DataError(self.bad[0][1])
        groups = read_works_csv(works) if works else {}
        self.out.mkdir(parents=True, exist_ok=True)
        self.side = _load_sidecar(self.out)
        done: dict = self.side["files"]
        self.tasks, self.unchanged, self.moved = [], 0, False
        for src, key in self.files:
            st = src.stat()
            pid = perf_id_of(key)
            label = groups.get(str(src.resolve()))
            wid = work_id_of(label) if label else work_id_of_file(key)
            rec = done.get(pid)
            paths = output_paths(self.out, wid, pid, self.features)
            same = bool(rec) and rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns and rec["work_id"] == wid
            if same and set(self.features) <= set(rec["features"]) and all(p.is_file() for p in paths.values()):
                if rec["source"] != str(src.resolve()):  # the same file, moved with its folder
                    rec["source"] = str(src.resolve())
                    self.moved = True
                self.unchanged += 1
                continue
            if rec and rec["work_id"] != wid:  # regrouped: drop the files under the old work
                for p in output_paths(self.out, rec["work_id"], pid, rec["features"]).values():
                    p.unlink(missing_ok=True)
            todo = [f for f in self.features if not same or f not in rec["features"] or not paths[f].is_file()]
            self.tasks.append({"src": str(src), "out": str(self.out), "perf_id": pid, "work_id": wid,
                               "features": todo, "key": key, "label": label or "", "size": st.st_size,
                               "mtime_ns": st.st_mtime_ns,
                               "keep": sorted(set(rec["features"]) - set(todo)) if same else []})
        self.stats = {"ok": 0, "audio_seconds": 0.0, "decode_cpu": 0.0, "features_cpu": 0.0}
        self._by_pid = {t["perf_id"]: t for t in self.tasks}
        self._last_save = time.perf_counter()

    def save(self, force: bool = False) -> None:
        """Write the sidecar (at most every 5 s unless ``force``)."""
        if force or time.perf_counter() - self._last_save > 5:
            write_json_atomic(self.out / SIDECAR, self.side)
            self._last_save = time.perf_counter()

    def accept(self, r: dict, *, raise_bad: bool | None = None) -> None:
        """Record one task's result (``extract_task``'s dict).

        Raises:
            DataError: the file failed and ``raise_bad`` (default: not ``skip_bad``).
        """
        t = self._by_pid[r["perf_id"]]
        if "error" in r:
            self.bad.append((t["src"], r["error"]))
            if (not self.skip_bad) if raise_bad is None else raise_bad:
                raise DataError(r["error"])
            return
        self.side["files"][t["perf_id"]] = {
            "source": str(Path(t["src"]).resolve()), "key": t["key"], "size": t["size"], "mtime_ns": t["mtime_ns"],
            "work_id": t["work_id"], "work_label": t["label"], "features": sorted(set(t["features"]) | set(t["keep"])),
            "tags": r["tags"], "seconds": round(r["seconds"], 3)}
        self.stats["ok"] += 1
        self.stats["audio_seconds"] += r["seconds"]
        self.stats["decode_cpu"] += r["decode_cpu"]
        self.stats["features_cpu"] += r["features_cpu"]
        self.save()

    def finish(self, log=print) -> dict:
        """Save the sidecar, rebuild the metadata JSON, list skipped files; the run's summary."""
        if self.tasks or self.moved:
            self.save(force=True)
        meta_path = self.out / "da-tacos_metadata" / f"da-tacos_{SUBSET}_subset_metadata.json"
        write_bytes_atomic(meta_path, (json.dumps(_metadata(self.side["files"]), indent=1) + "\n").encode())
        if self.bad:
            log(f"skipped {len(self.bad)} file(s):")
            for _, msg in self.bad:
                log(f"  {msg}")
        st = self.stats
        return {"out": str(self.out), "n_files": len(self.files), "extracted": st["ok"], "unchanged": self.unchanged,
                "bad": self.bad, "features": list(self.features), "audio_seconds": round(st["audio_seconds"], 2),
                "decode_cpu": round(st["decode_cpu"], 3), "features_cpu": round(st["features_cpu"], 3),
                "seconds": round(time.perf_counter() - self.t0, 2), "metadata": str(meta_path)}


def extract(inputs, out: str | os.PathLike, *, features=("hpcp",), works: str | os.PathLike | None = None,
            jobs: int = 1, skip_bad: bool = False, progress: bool = True, log=print) -> dict:
    """Extract Da-TACOS features from audio files and folders into ``out`` (see the module doc).

    Args:
        inputs: audio files and/or folders (searched recursively).
        out: the Da-TACOS root to write (created; reused across runs).
        features: ``hpcp`` (default, what the shipped encoder reads) and/or ``cens``.
        works: a ``path,work_id`` CSV grouping files into works; default one work per file.
        jobs: worker processes.
        skip_bad: skip files that cannot be used (listed in the result) instead of stopping.
        progress: a progress bar on stderr.
        log: where to report skipped files.

    Returns:
        {"out", "n_files", "extracted", "unchanged", "bad": [(path, message)],
        "audio_seconds", "decode_cpu", "features_cpu", "seconds", "metadata"}.

    Raises:
        DataError: a bad file (without ``skip_bad``), an input folder without audio.
        ConfigError: bad options, two inputs with the same id.
    """
    from coversearch.audio.extract import check_features

    check_features(features)
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    plan = ExtractPlan(inputs, out, features=features, works=works, skip_bad=skip_bad)
    tasks = plan.tasks
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), unit="file", desc="extracting", disable=not progress or not tasks)
    try:
        if jobs == 1 or len(tasks) <= 1:
            for t in tasks:
                plan.accept(extract_task(t))
                bar.update(1)
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(min(jobs, len(tasks))) as pool:
                for r in pool.imap_unordered(extract_task, tasks, chunksize=1):
                    plan.accept(r)
                    bar.update(1)
    finally:
        bar.close()
        if tasks or plan.moved:
            plan.save(force=True)
    return plan.finish(log)


def work_id_of_file(key: str) -> str:
    """The work of a file that no ``--works`` row groups: its own, ``W_<n>`` from its key."""
    return f"W_{id_number(key)}"
