"""coversearch serve: every endpoint and bad input through FastAPI's test client,
one real uvicorn process on 127.0.0.1, and the index swapped by the writer
``build-index`` uses (``write_bundle``) under concurrent queries."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from coversearch import api  # noqa: E402
from coversearch.cli import main  # noqa: E402
from coversearch.index.bundle import write_bundle  # noqa: E402
from coversearch.serve import ServeConfig, create_app  # noqa: E402
from coversearch.serve.catalogue import Catalogue  # noqa: E402
from coversearch.serve.pool import HeavyPool, PoolFull  # noqa: E402

from .conftest import write_generated_wav, write_perf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _h5_of(index_dir: Path, perf_id: str) -> Path:
    from coversearch.index.bundle import load_bundle

    b = load_bundle(index_dir, load_index=False)
    return Path(b.items.column("path")[b.row_of(perf_id)].as_py())


@pytest.fixture(scope="module")
def client(demo_index):
    app = create_app(ServeConfig(index_dir=str(demo_index), watch_seconds=0, max_upload_mb=2, max_k=50))
    with TestClient(app) as c:
        yield c


# ---------------------------------------------------------------- units


def test_catalogue_prefix_order():
    import pyarrow as pa

    items = pa.table({"perf_id": ["P_220", "P_22", "P_3", "P_2201"], "work_id": ["W_1", "W_22", "W_3", "W_1"],
                      "perf_title": ["Blue Moon", "Heart of Glass", "heartbeat", "Moon River"],
                      "perf_artist": ["Ann", "Blondie", "Cat", "Dee"]})
    cat = Catalogue(items)
    assert [r["perf_id"] for r in cat.search("p_22")] == ["P_22", "P_220", "P_2201"]
    assert cat.search("P_22")[0]["match"] == "id"
    assert [r["perf_id"] for r in cat.search("heart")] == ["P_3", "P_22"]  # field prefix, shorter first
    assert [r["perf_id"] for r in cat.search("moon")] == ["P_2201", "P_220"]  # field start before a later word
    assert [r["perf_id"] for r in cat.search("w_22")] == ["P_22"]
    assert cat.search("  ") == [] and cat.search("zzz") == [] and len(cat.search("p", limit=2)) == 2


def test_pool_refuses_when_full_and_releases_on_finish():
    pool = HeavyPool(workers=1, queue=1)
    gate = threading.Event()

    async def scenario():
        a = asyncio.ensure_future(pool.run(gate.wait, 10))
        b = asyncio.ensure_future(pool.run(gate.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolFull) as e:
            await pool.run(lambda: None)
        assert e.value.retry_after >= 1
        a.cancel()  # a client going away does not free its slot: the job still runs
        await asyncio.sleep(0.05)
        with pytest.raises(PoolFull):
            await pool.run(lambda: None)
        gate.set()
        await b
        await asyncio.sleep(0.05)
        return await pool.run(lambda: 42)

    assert asyncio.run(scenario()) == 42
    assert pool.stats()["refused"] == 2
    pool.shutdown()


# ---------------------------------------------------------------- light endpoints


def test_query_by_id_matches_cli_json(client, demo_index):
    r = client.get("/api/query/P_22", params={"k": 8})
    assert r.status_code == 200
    cli = CliRunner().invoke(main, ["query", "P_22", "--k", "8", "--index-dir", str(demo_index), "--json"])
    assert cli.exit_code == 0, cli.output
    assert r.json() == json.loads(cli.output)
    assert r.headers["X-Coversearch-Index"] == client.get("/api/health").json()["version"]
    res = r.json()["results"]
    assert sum(x["same_work"] for x in res) >= 4 and all("path" not in x for x in res)


def test_query_profile(client):
    out = client.get("/api/query/P_22", params={"k": 5, "profile": "true"}).json()
    p = out["profile"]
    assert p["work_id"] == "W_22" and len(p["versions"]) == 12  # 13 versions minus the query
    assert p["rest"]["n"] == 27 - 13 and sum(p["rest"]["counts"]) == 14
    d = [v["distance"] for v in p["versions"]]
    assert d == sorted(d)
    same = {x["perf_id"]: x["distance"] for x in out["results"] if x["same_work"]}
    for v in p["versions"]:
        if v["perf_id"] in same:
            assert v["distance"] == pytest.approx(same[v["perf_id"]], abs=1e-5)


def test_unknown_id_and_bad_parameters(client):
    r = client.get("/api/query/P_2222")
    assert r.status_code == 404
    assert "P_2222" in r.json()["detail"] and "P_22" in r.json()["suggestions"]
    assert client.get("/api/items/nope").status_code == 404
    assert client.get("/api/query/P_22", params={"k": 0}).status_code == 422
    r = client.get("/api/query/P_22", params={"k": "ten"})
    assert r.status_code == 422 and "k must be an integer" in r.json()["detail"]
    assert client.get("/api/query/P_22", params={"rerank": "maybe"}).status_code == 422
    r = client.get("/api/query/P_22", params={"k": 51})
    assert r.status_code == 400 and "--max-k" in r.json()["detail"]
    assert client.get("/api/search", params={"q": ""}).status_code == 422
    assert client.get("/api/search", params={"q": "P", "limit": 0}).status_code == 422


def test_search_items_index_health_page(client):
    s = client.get("/api/search", params={"q": "p_22", "limit": 3}).json()["results"]
    assert s[0]["perf_id"] == "P_22" and s[0]["work_id"] == "W_22" and len(s) <= 3
    it = client.get("/api/items/P_22").json()
    assert it["item"]["work_id"] == "W_22" and len(it["versions"]) == 12 and "path" not in it["item"]
    title = it["item"]["work_title"].split()[0]
    assert any(x["work_id"] == "W_22" for x in client.get("/api/search", params={"q": title}).json()["results"])
    info = client.get("/api/index").json()
    assert info["manifest"]["count"] == 27 and info["n_works"] == 3 and info["generation"] == 1
    assert client.get("/api/health").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and 'id="q"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    doc = client.get("/openapi.json").json()["paths"]
    assert {p["name"] for p in doc["/api/query/{perf_id}"]["get"]["parameters"]} >= {"k", "rerank", "profile"}
    assert client.get("/docs").status_code == 200


def test_rerank_runs_in_the_pool(client):
    r = client.get("/api/query/P_22", params={"k": 5, "rerank": "true", "shortlist": 10})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["query"]["rerank"]["shortlist"] == 10 and "fused_score" in out["results"][0]
    assert client.get("/api/health").json()["heavy"]["done"] >= 1


# ---------------------------------------------------------------- uploads


def test_upload_h5(client, demo_index, monkeypatch):
    seen = {}
    real = api.query

    def spy(*a, **kw):
        f = Path(kw["file"])
        seen["mode"], seen["dir_mode"], seen["path"] = f.stat().st_mode & 0o777, f.parent.stat().st_mode & 0o777, f
        return real(*a, **kw)

    monkeypatch.setattr("coversearch.serve.app.api.query", spy)
    h5 = _h5_of(demo_index, "P_22")
    r = client.post("/api/query/file", files={"file": ("P_22_hpcp.h5", h5.read_bytes())},
                    data={"k": "5", "profile": "true"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["query"]["file"] == "P_22_hpcp.h5" and out["query"]["kind"] == "h5"
    assert out["results"][0]["perf_id"] == "P_22" and out["results"][0]["distance"] < 1e-4
    assert out["profile"]["work_id"] == "W_22" and "query_vector" not in out
    assert seen["mode"] == 0o600 and seen["dir_mode"] == 0o700
    assert not seen["path"].exists() and list(seen["path"].parent.iterdir()) == []


def test_upload_bad_inputs(client, demo_index, tmp_path):
    post = lambda name, data, **kw: client.post("/api/query/file", files={"file": (name, data)}, **kw)  # noqa: E731
    r = post("notes.txt", b"hello")
    assert r.status_code == 415 and ".txt" in r.json()["detail"]
    r = post("fake.h5", b"not hdf5 at all")
    assert r.status_code == 415 and "HDF5" in r.json()["detail"]
    r = post("empty.h5", b"")
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    bad = write_perf(tmp_path / "P_1_hpcp.h5", "hpcp", np.ones((50, 7), np.float32), "W_1", "P_1")
    r = post("P_1_hpcp.h5", bad.read_bytes())
    assert r.status_code == 422 and r.json()["detail"]
    r = post("big.h5", b"\x89HDF\r\n\x1a\n" + b"0" * (2 * 1024 * 1024 + 70_000))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = client.post("/api/query/file", content=iter([b"x" * 10]), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 411
    r = client.post("/api/query/file", data={"k": "3"})
    assert r.status_code == 422  # no file part


def test_upload_audio(client, tmp_path):
    """A generated performance of W_22 (a version no index holds), uploaded as WAV."""
    pytest.importorskip("coversearch.audio", reason="the audio stage (coversearch.audio) is not on this branch yet")
    wav = write_generated_wav(tmp_path / "new W_22 version.wav", "W_22", version=40, seconds=20)
    r = client.post("/api/query/file", files={"file": (wav.name, wav.read_bytes())},
                    data={"k": "10", "profile": "true"})
    assert r.status_code == 200, r.text
    out = r.json()
    q = out["query"]
    assert q["kind"] == "audio" and q["file"] == wav.name and "audio" not in q
    assert len(out["results"]) == 10 and out["profile"]["rest"]["n"] == 27
    assert sum(x["work_id"] == "W_22" for x in out["results"][:5]) >= 3  # its work's versions come first

    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3" + bytes(range(256)) * 40)
    r = client.post("/api/query/file", files={"file": (broken.name, broken.read_bytes())})
    assert r.status_code == 422 and "broken.mp3" in r.json()["detail"]
    assert "\n" not in r.json()["detail"]  # one clear line
    short = write_generated_wav(tmp_path / "short.wav", "W_22", version=41, seconds=20)
    import wave

    with wave.open(str(short), "rb") as w:
        head = w.readframes(w.getframerate())  # keep 1 s
        params = w.getparams()
    with wave.open(str(short), "wb") as w:
        w.setparams(params)
        w.writeframes(head)
    r = client.post("/api/query/file", files={"file": (short.name, short.read_bytes())})
    assert r.status_code == 422 and "short" in r.json()["detail"]


def test_compare_ids(client):
    r = client.get("/api/compare", params={"a": "P_22", "b": "P_nope"})
    assert r.status_code == 404 and "P_nope" in r.json()["detail"]
    r = client.get("/api/compare", params={"a": "/etc/passwd", "b": "P_22"})
    assert r.status_code == 404  # never read as a file
    if not hasattr(api, "compare"):
        pytest.skip("`coversearch compare` (api.compare) is not on this branch yet")
    r = client.get("/api/compare", params={"a": "P_22", "b": "P_461"})
    if r.status_code == 400 and "calibrat" in r.json()["detail"]:
        pytest.skip(f"the shipped encoder has no calibration here: {r.json()['detail']}")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["a"]["perf_id"] == "P_22" and out["b"]["perf_id"] == "P_461" and 0 <= out["cosine_distance"] <= 2


def test_compare_uploads(client, demo_index, tmp_path, monkeypatch):
    """POST /api/compare/file: an uploaded audio file against an indexed id or a second upload (h5 or audio)."""
    pytest.importorskip("coversearch.audio")
    from coversearch.index.bundle import load_bundle

    seen, real = [], api.compare

    def spy(*a, **kw):
        seen.extend(x for x, kind in zip(a, kw["kinds"]) if kind != "id")
        assert kw["bundle"] is client.app.state.holder.current.bundle  # the server's snapshot, not a reload
        return real(*a, **kw)

    monkeypatch.setattr("coversearch.serve.app.api.compare", spy)

    b = load_bundle(demo_index, load_index=False)
    other = next(p for p, w in zip(b.items.column("perf_id").to_pylist(), b.items.column("work_id").to_pylist())
                 if w != "W_22")
    wav = write_generated_wav(tmp_path / "new W_22 version.wav", "W_22", version=40, seconds=20)
    post = lambda files, data=None: client.post("/api/compare/file", files=files, data=data or {})  # noqa: E731
    r = post({"a": (wav.name, wav.read_bytes())}, {"b_id": "P_22"})
    assert r.status_code == 200, r.text
    same = r.json()
    assert same["a"]["kind"] == "audio" and same["a"]["file"] == wav.name and same["b"]["perf_id"] == "P_22"
    assert {"cosine_distance", "fused", "versions", "confidence", "threshold", "calibration"} <= set(same)
    assert r.headers["X-Coversearch-Index"] == client.get("/api/health").json()["version"]
    diff = post({"a": (wav.name, wav.read_bytes())}, {"b_id": other}).json()
    assert diff["cosine_distance"] > same["cosine_distance"]
    # the upload is scored exactly as `coversearch compare FILE ID` scores the file. (No fused order is
    # asserted: at the re-rank weight 0.6 this 20-s take aligns better with W_18's P_3849 than with P_22,
    # fused 0.357 vs 0.349, both "not versions"; at weight 0.5 it was 0.379 vs 0.395. README, compare.)
    direct = real(str(wav), "P_22", index_dir=demo_index)
    assert same["fused"] == pytest.approx(direct["fused"], abs=1e-6) and same["versions"] == direct["versions"]
    h5 = _h5_of(demo_index, "P_22")
    r = post({"a": (wav.name, wav.read_bytes()), "b": ("P_22_hpcp.h5", h5.read_bytes())})
    assert r.status_code == 200, r.text
    two = r.json()
    assert two["b"] == {"kind": "h5", "file": "P_22_hpcp.h5", "perf_id": "P_22", "work_id": "W_22",
                        "frames": two["b"]["frames"]}
    assert two["cosine_distance"] == pytest.approx(same["cosine_distance"], abs=1e-4)
    # bad requests
    assert post({"a": (wav.name, b"RIFF")}).status_code == 422  # neither b nor b_id
    assert post({"a": (wav.name, b"RIFF"), "b": ("x.h5", b"x")}, {"b_id": "P_22"}).status_code == 422
    r = post({"a": (wav.name, wav.read_bytes())}, {"b_id": "P_2"})
    assert r.status_code == 404 and "P_22" in r.json()["suggestions"]
    assert post({"a": (wav.name, wav.read_bytes())}, {"b_id": "/etc/passwd"}).status_code == 404
    r = post({"a": ("notes.txt", b"hi")}, {"b_id": "P_22"})
    assert r.status_code == 415 and ".txt" in r.json()["detail"]
    broken = b"ID3" + bytes(range(256)) * 40
    r = post({"a": (wav.name, wav.read_bytes()), "b": ("broken.mp3", broken)})
    detail = r.json()["detail"]
    assert r.status_code == 422 and "broken.mp3" in detail and "upload-" not in detail and "\n" not in detail
    assert seen and all(not Path(x).exists() for x in seen)  # the private copies are gone
    assert client.get("/api/health").json()["heavy"]["in_flight"] == 0


def test_heavy_pool_full_gives_503(client, demo_index):
    pool = client.app.state.pool
    held = 0
    while pool._slots.acquire(blocking=False):  # every slot taken by (pretend) running jobs
        held += 1
    try:
        r = client.post("/api/query/file", files={"file": ("P_22.h5", _h5_of(demo_index, "P_22").read_bytes())})
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["detail"]
        r = client.get("/api/query/P_22", params={"rerank": "true"})
        assert r.status_code == 503
        assert client.get("/api/query/P_22").status_code == 200  # light queries are not in the pool
    finally:
        for _ in range(held):
            pool._slots.release()
    assert held == pool.workers + pool.queue


# ---------------------------------------------------------------- reload and swap


def _bundle(index_dir: Path, letter: str, seed: int, n_works: int = 50, per_work: int = 4) -> None:
    """An index whose rows hold works of ``per_work`` tight versions, in a seeded row order.

    A request answered from a mix of two such indexes (one's FAISS rows, the
    other's items) would rank other works' items first."""
    rng = np.random.default_rng(seed)
    n = n_works * per_work
    centres = rng.normal(size=(n_works, 16))
    perm = rng.permutation(n)  # row r holds performance perm[r]
    work = perm // per_work
    vec = centres[work] + 0.05 * rng.normal(size=(n, 16))
    cols = {"perf_id": [f"P_{p}" for p in perm], "work_id": [f"W_{w}" for w in work], "subset": [letter] * n,
            "perf_title": [f"song {w}" for w in work]}
    write_bundle(index_dir, vec.astype(np.float32), cols, manifest_fields={"model_hash": f"test-{letter}"})


def test_snapshot_keeps_reading_the_folder_it_loaded(tmp_path):
    """After build-index replaces the folder, a snapshot's re-rank inputs (stored sequences,
    rerank.json) still come from the folder it loaded: never the new build's, and no error."""
    from coversearch.index.bundle import read_json_file
    from coversearch.rerank import RerankConfig
    from coversearch.serve.holder import make_snapshot

    idx = tmp_path / "idx"

    def build(letter, n, seed):
        rng = np.random.default_rng(seed)
        seqs = [rng.random((20 + i, 12), dtype=np.float32) for i in range(n)]
        cols = {"perf_id": [f"P_{i}" for i in range(n)], "work_id": [f"W_{i // 2}" for i in range(n)]}
        write_bundle(idx, rng.normal(size=(n, 16)).astype(np.float32), cols, sequences=seqs,
                     manifest_fields={"model_hash": f"test-{letter}"},
                     json_files={"rerank.json": {"config": RerankConfig().to_dict(), "chosen_by": letter}})
        return seqs

    a = build("A", 30, 1)
    snap = make_snapshot(idx)
    build("B", 40, 2)
    store = snap.bundle.sequences()
    assert len(store) == 30 and np.array_equal(store.sequence(29), a[29])
    assert read_json_file(snap.bundle, "rerank.json")["chosen_by"] == "A"
    assert api.load_rerank_config(snap.bundle) == RerankConfig()
    out = api.query("P_3", k=3, index_dir=idx, bundle=snap.bundle, rerank=True, shortlist=10)
    assert out["results"] and all(int(r["perf_id"][2:]) < 30 for r in out["results"])
    fresh = make_snapshot(idx).bundle
    assert len(fresh.sequences()) == 40 and read_json_file(fresh, "rerank.json")["chosen_by"] == "B"


def test_reload_endpoint(tmp_path):
    idx = tmp_path / "idx"
    _bundle(idx, "A", 1)
    with TestClient(create_app(ServeConfig(index_dir=str(idx), watch_seconds=0))) as c:
        assert c.post("/api/reload").json()["reloaded"] is False
        _bundle(idx, "B", 2)
        assert c.get("/api/query/P_0").json()["results"][0]["subset"] == "A"  # no reload yet
        out = c.post("/api/reload").json()
        assert out["reloaded"] is True and out["generation"] == 2
        assert c.get("/api/query/P_0").json()["results"][0]["subset"] == "B"
        (idx / "items.parquet").write_bytes(b"broken")  # a bad folder never replaces a good snapshot
        r = c.post("/api/reload", params={"force": "true"})
        assert r.status_code == 503 and "still serving generation 2" in r.json()["detail"]
        assert c.get("/api/query/P_0").status_code == 200
        assert c.get("/api/health").json()["reload_error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index_dir: Path, *extra: str, timeout: float = 60.0):
    """Start ``coversearch serve`` on a free 127.0.0.1 port; returns (process, base url, log path)."""
    port = _free_port()
    log = index_dir.parent / f"serve-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from coversearch.cli import main; main()", "serve",
                             "--index-dir", str(index_dir), "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not up within {timeout} s: {log.read_text()}")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_index_swap_under_concurrent_queries(tmp_path):
    """8 clients query a real uvicorn server while the folder is rebuilt 6 times
    (write_bundle: the atomic folder swap build-index uses) and the watcher
    reloads it: every answer comes whole from one index, none fails."""
    import httpx

    idx = tmp_path / "idx"
    _bundle(idx, "A", 0)
    proc, url, log = start_server(idx, "--watch-seconds", "0.05")
    stop, bad, seen, count = threading.Event(), [], set(), [0]

    def client_loop(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop.is_set() and count[0] < 20_000:
                r = c.get(f"/api/query/P_{int(rng.integers(200))}", params={"k": 3})
                count[0] += 1
                if r.status_code != 200:
                    bad.append(f"{r.status_code} {r.text[:200]}")
                    continue
                res = r.json()["results"]
                letters = {x["subset"] for x in res}
                seen.update(letters)
                # the 3 nearest are the query's own work's other versions in either index
                if len(letters) != 1 or not all(x["same_work"] for x in res):
                    bad.append(json.dumps(res)[:300])

    threads = [threading.Thread(target=client_loop, args=(s,)) for s in range(8)]
    try:
        for t in threads:
            t.start()
        for i in range(6):
            time.sleep(0.4)
            _bundle(idx, "BA"[i % 2], 10 + i)
        time.sleep(0.6)
        gen = httpx.get(url + "/api/health").json()["generation"]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        stop_server(proc)
    assert not bad, bad[:5]
    assert seen == {"A", "B"} and gen >= 4 and count[0] > 50, (seen, gen, count)


def test_live_server_on_localhost(demo_index):
    """One real uvicorn process: says where it listens, answers a bounded loop of queries."""
    import httpx

    proc, url, log = start_server(demo_index)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            codes = [c.get("/api/query/P_22", params={"k": 3}).status_code for _ in range(30)]
            assert codes == [200] * 30
            assert c.get("/api/query/P_0").status_code == 404
            assert c.get("/").status_code == 200
    finally:
        stop_server(proc)
    text = log.read_text()
    assert "listening on http://127.0.0.1:" in text and "this machine only" in text


def test_live_server_with_two_processes(demo_index):
    """--processes 2: uvicorn worker processes share the port, each with its own index copy."""
    import httpx

    proc, url, log = start_server(demo_index, "--processes", "2")
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            assert [c.get("/api/query/P_22", params={"k": 3}).json()["results"][0]["work_id"]
                    for _ in range(20)] == ["W_22"] * 20
    finally:
        stop_server(proc)
    assert "2 processes x 1 heavy worker(s)" in log.read_text()


def test_serve_cli_errors(tmp_path):
    r = CliRunner().invoke(main, ["serve", "--index-dir", str(tmp_path / "none")])
    assert r.exit_code == 4 and "no index" in r.output
    r = CliRunner().invoke(main, ["serve", "--index-dir", str(tmp_path), "--workers", "0"])
    assert r.exit_code == 5 and "--workers" in r.output
