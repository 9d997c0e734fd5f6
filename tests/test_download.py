"""Tests of coversearch.download against a local HTTP server on 127.0.0.1.

The archives are built here, in the real Da-TACOS layout (tiny h5 files
written with h5py, zipped with their top-level folder as the published zips
are), and served by a handler that can drop a connection, ignore ``Range``,
claim a huge size, or answer 404. No test reaches any other address.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from coversearch.cli import main
from coversearch.download import MARKER, download, load_sources, plan_archives, unpack_archive
from coversearch.errors import ConfigError, DownloadError

WORKS = {"W_1": ["P_1", "P_2"], "W_2": ["P_3", "P_4", "P_5"]}


# --- fixtures: archives in the real layout, and a server for them ---------------------------


def _h5_bytes(path: Path, feat: str, work: str, perf: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset(feat, data=rng.random((200, 12), dtype=np.float32))
        f.attrs["label"] = work.encode()
        f.attrs["track_id"] = perf.encode()


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _feature_zip(tmp: Path, subset: str, feat: str, top: bool = True) -> bytes:
    folder = f"da-tacos_{subset}_subset_{feat}"
    files = {}
    seed = 0
    for work, perfs in WORKS.items():
        for perf in perfs:
            p = tmp / f"{perf}_{feat}.h5"
            _h5_bytes(p, feat, work, perf, seed)
            seed += 1
            rel = f"{work}_{feat}/{perf}_{feat}.h5"
            files[f"{folder}/{rel}" if top else rel] = p.read_bytes()
    return _zip_bytes(files)


def _metadata_zip(subset: str) -> bytes:
    meta = {w: {p: {"work_id": w, "perf_id": p, "perf_title": p} for p in ps} for w, ps in WORKS.items()}
    return _zip_bytes({
        f"da-tacos_metadata/da-tacos_{subset}_subset_metadata.json": json.dumps(meta).encode()
    })


def _table(files: dict[str, bytes], parts: dict[str, str]) -> dict:
    return {part: {"file": name, "url": "", "md5": hashlib.md5(files[name]).hexdigest()}
            for part, name in parts.items()}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        name = urllib.parse.unquote(self.path.split("?")[0].rsplit("/", 1)[-1])
        rng = self.headers.get("Range")
        srv.requests.append((name, rng))
        if name not in srv.files:
            self.send_error(404, "Not Found")
            return
        data = srv.files[name]
        start = 0
        if rng and srv.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - start))
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(srv.fake_length.get(name, len(data))))
        self.end_headers()
        body = data[start:]
        drop = srv.drop_after.pop(name, None)  # only the first request drops
        stall = srv.stall_after.pop(name, None)  # ... or stalls past the client's timeout
        try:
            if stall is not None:
                self.wfile.write(body[:stall])
                self.wfile.flush()
                time.sleep(1.0)
                return
            self.wfile.write(body if drop is None else body[:drop])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.drop_after, srv.fake_length = {}, [], {}, {}
    srv.stall_after = {}
    srv.honour_range = True
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}/files"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dataset(tmp_path, server):
    """Serve metadata + benchmark hpcp; return the matching archive table."""
    build = tmp_path / "build"
    build.mkdir()
    server.files["da-tacos_metadata.zip"] = _metadata_zip("benchmark")
    server.files["da-tacos_benchmark_subset_hpcp.zip"] = _feature_zip(build, "benchmark", "hpcp")
    return _table(server.files, {"metadata": "da-tacos_metadata.zip",
                                 "benchmark_hpcp": "da-tacos_benchmark_subset_hpcp.zip"})


def _get(dest, server, sources, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("backoff", 0.0)
    return download(dest, source=server.base, sources=sources, **kw)


def _leftovers(dest: Path) -> list[str]:
    """Names that must not survive a finished or failed run."""
    return sorted(p.name for p in dest.iterdir()
                  if p.name.endswith((".part", ".tmp", ".old")) or p.name.startswith(".da-tacos"))


def _assert_layout(dest: Path) -> None:
    meta = dest / "da-tacos_metadata" / "da-tacos_benchmark_subset_metadata.json"
    assert json.loads(meta.read_text())["W_2"]["P_5"]["work_id"] == "W_2"
    for work, perfs in WORKS.items():
        for perf in perfs:
            h5 = dest / "da-tacos_benchmark_subset_hpcp" / f"{work}_hpcp" / f"{perf}_hpcp.h5"
            with h5py.File(h5, "r") as f:
                assert f["hpcp"].shape == (200, 12)


# --- acceptance: clean, resumed, corrupted, 404, idempotent ---------------------------------


def test_clean_download_unpacks_into_reader_layout(tmp_path, server, dataset):
    dest = tmp_path / "data"
    records = _get(dest, server, dataset)
    assert [(r["name"], r["status"]) for r in records] == [
        ("da-tacos_metadata.zip", "downloaded"),
        ("da-tacos_benchmark_subset_hpcp.zip", "downloaded"),
    ]
    assert records[1]["bytes"] == len(server.files["da-tacos_benchmark_subset_hpcp.zip"])
    _assert_layout(dest)
    assert not list(dest.glob("*.zip"))  # not kept by default
    assert _leftovers(dest) == []
    marker = json.loads((dest / MARKER).read_text())
    assert marker["archives"]["da-tacos_benchmark_subset_hpcp.zip"]["files"] == 5

    layout = pytest.importorskip("coversearch.data.layout")
    found = layout.find_performances(dest, "hpcp", "benchmark")
    assert sorted(e.perf_id for e in found) == ["P_1", "P_2", "P_3", "P_4", "P_5"]


def test_resumes_after_dropped_connection(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    server.drop_after[name] = 1000
    records = _get(tmp_path / "data", server, dataset)
    assert records[1]["status"] == "resumed"
    assert (name, "bytes=1000-") in server.requests
    _assert_layout(tmp_path / "data")


def test_resumes_part_left_by_an_interrupted_run(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    dest = tmp_path / "data"
    server.drop_after[name] = 1500
    with pytest.raises(DownloadError, match=rf"{name}: connection dropped after 1500 of \d+ .*resume"):
        _get(dest, server, dataset, retries=0)
    assert (dest / f"{name}.part").stat().st_size == 1500
    assert not (dest / "da-tacos_benchmark_subset_hpcp").exists()

    records = _get(dest, server, dataset)
    assert [r["status"] for r in records] == ["skipped", "resumed"]
    assert server.requests[-1] == (name, "bytes=1500-")
    _assert_layout(dest)
    assert _leftovers(dest) == []


def test_resumes_after_a_stalled_connection_times_out(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    server.stall_after[name] = 800
    records = _get(tmp_path / "data", server, dataset, timeout=0.2)
    assert records[1]["status"] == "resumed"
    assert (name, "bytes=800-") in server.requests
    _assert_layout(tmp_path / "data")


def test_complete_part_is_verified_not_refetched(tmp_path, server, dataset):
    # Killed after the last byte but before the rename: the server answers 416.
    name = "da-tacos_benchmark_subset_hpcp.zip"
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / f"{name}.part").write_bytes(server.files[name])
    records = _get(dest, server, dataset)
    assert records[1]["status"] == "resumed"
    _assert_layout(dest)


def test_foreign_zip_under_the_final_name_is_replaced(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / name).write_bytes(b"not the archive")
    records = _get(dest, server, dataset)
    assert records[1]["status"] == "downloaded"
    _assert_layout(dest)


def test_restarts_when_server_ignores_range(tmp_path, server, dataset):
    server.honour_range = False
    server.drop_after["da-tacos_benchmark_subset_hpcp.zip"] = 700
    records = _get(tmp_path / "data", server, dataset)
    assert records[1]["status"] == "downloaded"
    _assert_layout(tmp_path / "data")


def test_checksum_mismatch_deletes_the_bad_archive(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    dataset["benchmark_hpcp"]["md5"] = "0" * 32
    dest = tmp_path / "data"
    with pytest.raises(DownloadError) as err:
        _get(dest, server, dataset, keep_zips=True)
    msg = str(err.value)
    assert "checksum mismatch" in msg and name in msg and f"{server.base}/{name}" in msg
    assert "deleted" in msg and "\n" not in msg
    assert not (dest / name).exists() and not (dest / f"{name}.part").exists()
    assert not (dest / "da-tacos_benchmark_subset_hpcp").exists()
    assert (dest / "da-tacos_metadata").is_dir()  # the good archive before it stays


def test_404_names_file_and_address(tmp_path, server, dataset):
    del server.files["da-tacos_benchmark_subset_hpcp.zip"]
    with pytest.raises(DownloadError, match=r"da-tacos_benchmark_subset_hpcp\.zip: HTTP 404 .*127\.0\.0\.1"):
        _get(tmp_path / "data", server, dataset)


def test_network_failure_names_file_and_address(tmp_path, dataset):
    # A port nobody listens on: bind, read the number, close.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(DownloadError, match=r"da-tacos_metadata\.zip: network failure .*127\.0\.0\.1"):
        download(tmp_path / "d", source=base, sources=dataset, progress=False, retries=1, backoff=0)


def test_second_run_is_idempotent_and_transfers_nothing(tmp_path, server, dataset):
    dest = tmp_path / "data"
    _get(dest, server, dataset)
    h5 = dest / "da-tacos_benchmark_subset_hpcp" / "W_1_hpcp" / "P_1_hpcp.h5"
    mtime = h5.stat().st_mtime_ns
    n_requests = len(server.requests)
    records = _get(dest, server, dataset)
    assert [r["status"] for r in records] == ["skipped", "skipped"]
    assert len(server.requests) == n_requests
    assert h5.stat().st_mtime_ns == mtime

    # A folder the user emptied is no longer complete: fetched again.
    h5.unlink()
    records = _get(dest, server, dataset)
    assert [r["status"] for r in records] == ["skipped", "downloaded"]
    _assert_layout(dest)


def test_kept_zips_are_reverified_not_refetched(tmp_path, server, dataset):
    dest = tmp_path / "data"
    records = _get(dest, server, dataset, unpack=False)
    assert all(r["folder"] is None for r in records)
    assert sorted(p.name for p in dest.glob("*.zip")) == sorted(server.files)
    assert not (dest / "da-tacos_metadata").exists()
    n_requests = len(server.requests)
    records = _get(dest, server, dataset, keep_zips=True)
    assert [r["status"] for r in records] == ["skipped", "skipped"]
    assert len(server.requests) == n_requests
    _assert_layout(dest)
    assert len(list(dest.glob("*.zip"))) == 2


def test_not_enough_disk_space_detected_before_transfer(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    server.fake_length[name] = 1 << 60  # an exabyte
    dest = tmp_path / "data"
    with pytest.raises(DownloadError, match=rf"not enough disk space for {name}"):
        _get(dest, server, dataset)
    part = dest / f"{name}.part"
    assert not part.exists() or part.stat().st_size == 0


def test_zip_without_top_level_folder(tmp_path, server, dataset):
    name = "da-tacos_benchmark_subset_hpcp.zip"
    build = tmp_path / "b2"
    build.mkdir()
    server.files[name] = _feature_zip(build, "benchmark", "hpcp", top=False)
    dataset["benchmark_hpcp"]["md5"] = hashlib.md5(server.files[name]).hexdigest()
    _get(tmp_path / "data", server, dataset)
    _assert_layout(tmp_path / "data")


def test_unsafe_zip_leaves_nothing_under_the_final_name(tmp_path):
    bad = tmp_path / "da-tacos_benchmark_subset_hpcp.zip"
    bad.write_bytes(_zip_bytes({"W_1_hpcp/P_1_hpcp.h5": b"x", "../escape.h5": b"y"}))
    dest = tmp_path / "data"
    dest.mkdir()
    with pytest.raises(DownloadError, match="unsafe member path"):
        unpack_archive(bad, dest / "da-tacos_benchmark_subset_hpcp")
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escape.h5").exists()


# --- the table and the plan ---------------------------------------------------------------


def test_shipped_table_has_every_archive_with_an_md5():
    table = load_sources()
    assert len(table) == 14
    assert all(len(row["md5"]) == 32 and row["url"].startswith("https://zenodo.org/")
               for row in table.values())
    assert [a.file for a in plan_archives()] == [
        "da-tacos_metadata.zip", "da-tacos_benchmark_subset_hpcp.zip"]


def test_plan_all_subsets_and_unknown_features():
    files = [a.file for a in plan_archives("all", "crema,tags")]
    assert files == ["da-tacos_metadata.zip", "da-tacos_benchmark_subset_crema.zip",
                     "da-tacos_coveranalysis_subset_crema.zip",
                     "da-tacos_coveranalysis_subset_tags.zip"]
    with pytest.raises(ConfigError, match="no 'tags' archive for subset benchmark"):
        plan_archives("benchmark", ["tags"])
    with pytest.raises(ConfigError, match="unknown subset"):
        plan_archives("both")


# --- the CLI --------------------------------------------------------------------------------


def test_cli_404_is_one_error_line_and_nonzero(tmp_path, server):
    # The shipped table, fetched from a mirror that has none of its files.
    result = CliRunner().invoke(main, ["download", "--dest", str(tmp_path / "d"),
                                       "--source", server.base, "--quiet"])
    assert result.exit_code == DownloadError.exit_code
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: da-tacos_metadata.zip: HTTP 404")
    assert f"{server.base}/da-tacos_metadata.zip" in lines[0]


def test_cli_config_error_for_unknown_feature(tmp_path):
    result = CliRunner().invoke(main, ["download", "--dest", str(tmp_path / "d"),
                                       "--features", "chords", "--source", "http://127.0.0.1:9"])
    assert result.exit_code == ConfigError.exit_code
    assert result.output.startswith("Error: no 'chords' archive")
