"""Fetch the real Da-TACOS: verified, resumable, idempotent.

Dataset card: Da-TACOS (Yesiler et al., ISMIR 2019; Music Technology Group,
CC BY-NC-SA 4.0) ships pre-extracted features of 15,000 benchmark and 10,000
cover-analysis performances as one zip per (subset, feature), plus one
metadata zip. The dataset's own script points at Google Drive folders that
users report as gone; the same archives are on Zenodo, and their MD5s are
listed by mirdata. That table lives in ``resources/sources.json``.

This module owns the transfer (HTTP with ``Range`` resume, retries, timeouts,
a disk-space check), the MD5 verification, unpacking into the layout that
``coversearch.data.layout`` reads, and the marker file
``DEST/.coversearch-download.json`` that makes a second run fast. After
``download(dest)``, ``dest`` holds::

    da-tacos_metadata/da-tacos_{subset}_subset_metadata.json
    da-tacos_{subset}_subset_{feature}/W_x_{feature}/P_y_{feature}.h5

Nothing under a final name is ever half-written: an archive is fetched as
``<file>.part`` and renamed only once its MD5 matches; a folder is unpacked
under a hidden temporary name and swapped in whole.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from coversearch._io import atomic_dir, write_json_atomic
from coversearch.errors import ConfigError, DownloadError

SUBSETS = ("benchmark", "coveranalysis")
DEFAULT_FEATURES = ("hpcp",)  # what the shipped encoder reads
MARKER = ".coversearch-download.json"
MARKER_FORMAT = 1

_CHUNK = 1 << 20
_USER_AGENT = "coversearch-download/1"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
# Files some zip tools add that are not part of the data set.
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class Archive:
    """One downloadable zip.

    Attributes:
        part: table key, ``metadata`` or ``{subset}_{feature}``.
        file: archive file name, e.g. ``da-tacos_benchmark_subset_hpcp.zip``.
        url: published address (may be empty when a ``source`` base is given).
        md5: expected MD5 of the whole zip, lowercase hex.
    """

    part: str
    file: str
    url: str
    md5: str

    @property
    def folder(self) -> str:
        """The top-level folder this archive unpacks to (its file name without ``.zip``)."""
        return self.file[: -len(".zip")] if self.file.endswith(".zip") else self.file


def load_sources() -> dict[str, dict]:
    """Return the shipped archive table: ``{part: {"file", "url", "md5"}}``."""
    text = resources.files("coversearch").joinpath("resources/sources.json").read_text()
    return json.loads(text)["archives"]


def plan_archives(
    subset: str = "benchmark",
    features: Iterable[str] | str = DEFAULT_FEATURES,
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Archive]:
    """Choose the archives for a subset and features; metadata always comes first.

    Args:
        subset: ``benchmark``, ``coveranalysis`` or ``all``.
        features: feature names (or one comma-separated string); ``all`` takes
            every feature the table has for the subset.
        sources: archive table (``{part: {"file", "url", "md5"}}``); None = shipped table.

    Returns:
        Archives in download order, each once.

    Raises:
        ConfigError: unknown subset, or a feature that no chosen subset publishes.
    """
    table = load_sources() if sources is None else sources
    if subset not in (*SUBSETS, "all"):
        raise ConfigError(f"unknown subset {subset!r}: choose benchmark, coveranalysis or all")
    subsets = SUBSETS if subset == "all" else (subset,)
    if isinstance(features, str):
        features = features.split(",")
    feats = [f.strip().lower() for f in features if f.strip()]
    if not feats:
        raise ConfigError("--features is empty: name at least one feature, e.g. hpcp")
    if "all" in feats:
        feats = sorted({k.split("_", 1)[1] for k in table if k.split("_", 1)[0] in subsets})
    if "metadata" not in table:
        raise ConfigError("the archive table has no 'metadata' entry")
    parts = ["metadata"]
    for feat in dict.fromkeys(feats):
        have = [f"{s}_{feat}" for s in subsets if f"{s}_{feat}" in table]
        if not have:
            offered = sorted({k.split("_", 1)[1] for k in table if k.split("_", 1)[0] in subsets})
            raise ConfigError(
                f"no {feat!r} archive for subset {subset}: choose from {', '.join(offered)}"
            )
        parts.extend(have)
    out = []
    for part in parts:
        row = table[part]
        try:
            out.append(Archive(part, row["file"], row.get("url", ""), row["md5"].lower()))
        except KeyError as e:
            raise ConfigError(f"archive table entry {part!r} lacks {e.args[0]!r}") from None
    return out


def md5_of(path: str | os.PathLike) -> str:
    """MD5 of a file, read in 1 MiB blocks (lowercase hex)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(
    dest: str | os.PathLike,
    subset: str = "benchmark",
    features: Iterable[str] | str = DEFAULT_FEATURES,
    source: str | None = None,
    unpack: bool = True,
    keep_zips: bool = False,
    progress: bool = True,
    sources: Mapping[str, Mapping[str, str]] | None = None,
    *,
    retries: int = 4,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> list[dict]:
    """Fetch, verify and unpack Da-TACOS archives into ``dest``.

    Each archive is fetched to ``dest/<file>.part`` (resumed with an HTTP
    ``Range`` request if that exists, and after a dropped connection),
    checked against its MD5, renamed to ``dest/<file>``, then unpacked into
    ``dest/<folder>`` as a whole. A second run trusts the marker file for
    folders it unpacked (checking their file counts) and re-hashes kept zips,
    so it transfers nothing that is complete.

    Args:
        dest: data root to fill (created if absent).
        subset: ``benchmark``, ``coveranalysis`` or ``all``.
        features: feature names or a comma-separated string; metadata is always fetched.
        source: mirror base URL; each archive is fetched from ``source/<file>``.
        unpack: unpack each verified zip; False keeps only the zips.
        keep_zips: keep each zip after unpacking it.
        progress: show a tqdm bar per file on stderr.
        sources: archive table ``{part: {"file", "url", "md5"}}``; None = the
            shipped Zenodo table (tests pass their own).
        retries: extra attempts after a dropped connection or a 5xx.
        timeout: socket timeout in seconds.
        backoff: seconds before the first retry, doubled on each further retry.

    Returns:
        One record per archive: ``name`` (file), ``part``, ``status``
        (``downloaded``, ``resumed`` or ``skipped``), ``bytes`` (archive size),
        ``md5``, ``url`` and ``folder`` (unpacked folder name, or None).

    Raises:
        DownloadError: HTTP error, network failure after the retries, MD5
            mismatch (the bad archive is deleted), not enough disk space.
        ConfigError: unknown subset or feature.
    """
    archives = plan_archives(subset, features, sources)
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create destination folder {dest}: {e.strerror}") from None
    marker = _read_marker(dest)
    records = []
    for arc in archives:
        url = _url_for(arc, source)
        records.append(
            _fetch_one(arc, url, dest, marker, unpack, keep_zips, progress, retries, timeout, backoff)
        )
    return records


def _url_for(arc: Archive, source: str | None) -> str:
    if source:
        return source.rstrip("/") + "/" + urllib.parse.quote(arc.file)
    if not arc.url:
        raise ConfigError(f"no address for {arc.file}: give --source BASE")
    return arc.url


def _fetch_one(arc, url, dest, marker, unpack, keep_zips, progress, retries, timeout, backoff):
    zip_path = dest / arc.file
    folder = dest / arc.folder
    done = marker["archives"].get(arc.file, {})
    record = {"name": arc.file, "part": arc.part, "status": "skipped", "bytes": done.get("bytes"),
              "md5": arc.md5, "url": url, "folder": arc.folder if unpack else None}

    if (unpack and done.get("md5") == arc.md5 and done.get("unpacked")
            and folder.is_dir() and _count_files(folder) == done.get("files")):
        return record

    if zip_path.exists() and md5_of(zip_path) == arc.md5:
        record["bytes"] = zip_path.stat().st_size
    else:
        # A zip only gets its final name after verification, so a mismatching
        # one came from elsewhere: fetch a fresh copy rather than trust it.
        zip_path.unlink(missing_ok=True)
        part = dest / (arc.file + ".part")
        status, size = _transfer(url, part, arc.file, dest, progress, retries, timeout, backoff,
                                 unpack_factor=1 if unpack else 0)
        got = md5_of(part)
        if got != arc.md5:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"checksum mismatch for {arc.file} from {url}: expected md5 {arc.md5}, got {got}; "
                f"deleted the bad archive, run again to fetch it afresh"
            )
        os.replace(part, zip_path)
        record.update(status=status, bytes=size)

    entry = {"md5": arc.md5, "bytes": record["bytes"], "unpacked": False}
    marker["archives"][arc.file] = entry
    _write_marker(dest, marker)
    if unpack:
        entry.update(files=unpack_archive(zip_path, folder, progress=progress), unpacked=True,
                     folder=arc.folder)
        _write_marker(dest, marker)
        if not keep_zips:
            zip_path.unlink()
    return record


def _transfer(url, part, name, dest, progress, retries, timeout, backoff, unpack_factor):
    """Fetch ``url`` into ``part``, resuming from its current size. Returns (status, size)."""
    resumed = False
    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": _USER_AGENT}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and have:
                # Nothing left to send: the .part already holds the whole file;
                # the MD5 check decides whether it is good.
                return "resumed", have
            if e.code >= 500 and attempt < retries:
                attempt = _sleep(attempt, backoff)
                continue
            raise DownloadError(f"{name}: HTTP {e.code} {e.reason} from {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            if attempt < retries:
                attempt = _sleep(attempt, backoff)
                continue
            reason = getattr(e, "reason", None) or e
            raise DownloadError(f"{name}: network failure ({reason}) fetching {url}") from None

        dropped = False
        with resp:
            start, total = _response_range(resp, have)
            if start != have:
                part.unlink(missing_ok=True)
                if start != 0:
                    # A 206 for some other range: ask again for the whole file.
                    have = 0
                    dropped = True
                else:
                    # The server ignored the Range header and sends it all.
                    have = 0
            elif have:
                resumed = True
            if not dropped:
                if total is not None:
                    _check_space(dest, name, (total - have) + unpack_factor * total)
                try:
                    have = _copy_body(resp, part, have, total, name, progress)
                except (OSError, http.client.HTTPException) as e:
                    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                        raise DownloadError(
                            f"{name}: disk full in {dest} while fetching {url}") from None
                    have = part.stat().st_size if part.exists() else 0
                    dropped = True
        if not dropped and (total is None or have >= total):
            return ("resumed" if resumed else "downloaded"), have
        # The connection dropped before the end of the body.
        if attempt < retries:
            attempt = _sleep(attempt, backoff)
            continue
        of_total = f" of {total}" if total is not None else ""
        raise DownloadError(
            f"{name}: connection dropped after {have}{of_total} bytes fetching {url}; "
            f"run again to resume from {part.name}"
        )


def _sleep(attempt: int, backoff: float) -> int:
    time.sleep(backoff * (2**attempt))
    return attempt + 1


def _response_range(resp, have: int) -> tuple[int, int | None]:
    """(first byte offset, total size or None) of a response body."""
    status = getattr(resp, "status", None) or 200
    length = resp.headers.get("Content-Length")
    if status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if m:
            start = int(m.group(1))
            total = int(m.group(3)) if m.group(3) != "*" else None
            return start, total
        return -1, None
    return 0, int(length) if length and length.isdigit() else None


def _copy_body(resp, part: Path, have: int, total: int | None, name: str, progress: bool) -> int:
    bar = _bar(progress, total, have, name, "B")
    try:
        # read1 hands over whatever has arrived, so bytes received before a
        # stall are on disk (and resumable) when the socket times out.
        read = getattr(resp, "read1", resp.read)
        with open(part, "ab" if have else "wb") as f:
            while True:
                block = read(_CHUNK)
                if not block:
                    break
                f.write(block)
                have += len(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return have


def _bar(progress: bool, total, initial: int, desc: str, unit: str):
    if not progress:
        return None
    from tqdm import tqdm

    scale = unit == "B"
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=scale,
                unit_divisor=1024 if scale else 1000, leave=True)


def _check_space(dest: Path, name: str, need: int) -> None:
    free = shutil.disk_usage(dest).free
    if free < need:
        raise DownloadError(
            f"not enough disk space for {name}: needs about {_human(need)}, "
            f"{_human(free)} free in {dest}"
        )


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def unpack_archive(zip_path: str | os.PathLike, folder: str | os.PathLike,
                   progress: bool = False) -> int:
    """Unpack a zip into ``folder`` as a whole, whether or not it has a top-level folder.

    A zip whose members all sit under one ``da-tacos*`` folder (the published
    archives) has that level stripped; any other zip is unpacked as the
    folder's content. The result is built under a hidden temporary name
    beside ``folder`` and swapped in, so ``folder`` is never half-written.

    Args:
        zip_path: the verified archive.
        folder: final folder, e.g. ``DEST/da-tacos_benchmark_subset_hpcp``.
        progress: show a tqdm bar (files).

    Returns:
        Number of files unpacked.

    Raises:
        DownloadError: unreadable zip, a member escaping the folder, or not
            enough disk space for the unpacked size.
    """
    zip_path, folder = Path(zip_path), Path(folder)
    try:
        with zipfile.ZipFile(zip_path) as z:
            members = [i for i in z.infolist() if not any(j in i.filename for j in _JUNK)]
            strip = _common_top(members)
            _check_space(folder.parent, zip_path.name, sum(i.file_size for i in members))
            count = 0
            with atomic_dir(folder) as tmp:
                bar = _bar(progress, len(members), 0, f"unpack {zip_path.name}", "file")
                for info in members:
                    parts = PurePosixPath(info.filename.replace("\\", "/")).parts[1 if strip else 0:]
                    if not parts:
                        continue
                    if any(p in ("..", "") for p in parts) or parts[0].startswith("/"):
                        raise DownloadError(f"{zip_path.name}: unsafe member path {info.filename!r}")
                    target = tmp.joinpath(*parts)
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with z.open(info) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, _CHUNK)
                        count += 1
                    if bar is not None:
                        bar.update(1)
                if bar is not None:
                    bar.close()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise DownloadError(f"{zip_path.name} is not a readable zip archive ({e})") from None
    return count


def _common_top(members: list[zipfile.ZipInfo]) -> bool:
    """True if every member sits under one shared ``da-tacos*`` top-level folder."""
    tops = set()
    for info in members:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if not parts or (len(parts) == 1 and not info.is_dir()):
            return False
        tops.add(parts[0])
    return len(tops) == 1 and next(iter(tops)).startswith("da-tacos")


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _read_marker(dest: Path) -> dict:
    path = dest / MARKER
    try:
        marker = json.loads(path.read_text())
        if marker.get("format") == MARKER_FORMAT and isinstance(marker.get("archives"), dict):
            return marker
    except (OSError, ValueError):
        pass
    # A missing or unreadable marker only costs a re-check, never wrong data.
    return {"format": MARKER_FORMAT, "archives": {}}


def _write_marker(dest: Path, marker: dict) -> None:
    write_json_atomic(dest / MARKER, marker)
