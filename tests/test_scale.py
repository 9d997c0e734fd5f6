"""build-index --engine ray (local Ray, 2 CPUs, one module-scoped session) and
--store milvus (Milvus Lite): the same items, vectors and answers as the local
path; failures and timeouts leave the old index answering; mismatches fail
with one line. Every test runs under an alarm, since an oversubscribed Ray
pool waits silently."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("ray", reason="the [scale] extra is not installed")
pytest.importorskip("pymilvus", reason="the [scale] extra is not installed")

from coversearch import api  # noqa: E402
from coversearch.cli import main  # noqa: E402
from coversearch.errors import ConfigError, CoversearchError, DataError, IndexMismatchError  # noqa: E402
from coversearch.index.bundle import load_bundle, write_bundle  # noqa: E402
from coversearch.index.choose import choose_index  # noqa: E402
from coversearch.index.store import StoreConfig  # noqa: E402
from coversearch.model.checkpoint import save_checkpoint  # noqa: E402
from coversearch.model.config import EncoderConfig  # noqa: E402
from coversearch.model.encoder import Encoder  # noqa: E402
from tests.conftest import write_perf  # noqa: E402

TEST_SECONDS = 240  # per test; a Ray job that waits silently fails here instead of hanging CI


@pytest.fixture(autouse=True)
def _alarm():
    def boom(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_SECONDS} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(TEST_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _write_set(root: Path, n_works=5, versions=3, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for w in range(n_works):
        template = np.abs(rng.normal(size=(300, 12))).astype(np.float32)
        for v in range(versions):
            x = np.roll(template, int(rng.integers(0, 12)), axis=1) + 0.3 * rng.random((300, 12)).astype(np.float32)
            x = x / x.max(axis=1, keepdims=True)
            wid, pid = f"W_{w + 1}", f"P_{w * 10 + v + 1}"
            write_perf(root / "da-tacos_benchmark_subset_hpcp" / f"{wid}_hpcp" / f"{pid}_hpcp.h5", "hpcp", x,
                       wid, pid, hop_length=np.int64(2048))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("scale") / "data")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(p, Encoder(EncoderConfig(dim=32, channels=8, hidden=16)), {"history": []})
    return p


@pytest.fixture(scope="module")
def ray_session():
    from coversearch.scale.ray_build import init_ray

    ray = init_ray(None, num_cpus=2)  # retried: a loaded machine can miss Ray's 30 s start-up deadline
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "test.db")


@pytest.fixture(scope="module")
def local_index(data, model, tmp_path_factory) -> Path:
    idx = tmp_path_factory.mktemp("local") / "idx"
    api.build_index(data, model=model, index_dir=idx, jobs=1, progress=False, log=lambda *_: None)
    return idx


@pytest.fixture(scope="module")
def ray_index(ray_session, data, model, tmp_path_factory) -> Path:
    idx = tmp_path_factory.mktemp("ray") / "idx"
    api.build_index(data, model=model, index_dir=idx, engine="ray", ray_timeout=200, progress=False,
                    log=lambda *_: None)
    return idx


# --- Ray ---

def test_ray_build_equals_local(local_index, ray_index):
    a, b = load_bundle(local_index), load_bundle(ray_index)
    assert a.items.column("perf_id").to_pylist() == b.items.column("perf_id").to_pylist()
    assert a.items.column("work_id").to_pylist() == b.items.column("work_id").to_pylist()
    np.testing.assert_allclose(np.asarray(a.vectors), np.asarray(b.vectors), atol=1e-5)
    assert b.manifest.extra["engine"] == "ray" and b.manifest.extra["ray"]["address"] == "local"
    ma = api.evaluate(local_index, progress=False)
    mb = api.evaluate(ray_index, progress=False)
    assert ma["map"] == pytest.approx(mb["map"], abs=1e-9) and ma["mr1"] == pytest.approx(mb["mr1"], abs=1e-9)
    qa = api.query("P_1", index_dir=local_index, k=5)["results"]
    qb = api.query("P_1", index_dir=ray_index, k=5)["results"]
    assert [r["perf_id"] for r in qa] == [r["perf_id"] for r in qb]
    # the Ray-built folder carries the same re-rank data, so the cascade answers alike
    sa, sb = a.sequences(verify_hashes=True), b.sequences(verify_hashes=True)
    np.testing.assert_array_equal(sa.offsets, sb.offsets)
    np.testing.assert_array_equal(np.asarray(sa.frames), np.asarray(sb.frames))
    ra = api.query("P_1", index_dir=local_index, k=5, rerank=True)["results"]
    rb = api.query("P_1", index_dir=ray_index, k=5, rerank=True)["results"]
    assert [r["perf_id"] for r in ra] == [r["perf_id"] for r in rb]
    # shards are gone
    assert not list(ray_index.parent.glob(".idx.ray-shards.*"))


def test_ray_bad_file_fails_then_skips_and_old_index_answers(ray_session, data, model, ray_index, tmp_path):
    bad_root = tmp_path / "bad"
    _write_set(bad_root, n_works=2, versions=2)
    broken = bad_root / "da-tacos_benchmark_subset_hpcp" / "W_2_hpcp" / "P_12_hpcp.h5"
    broken.write_bytes(b"not an hdf5 file")
    before = api.query("P_1", index_dir=ray_index, k=3)
    with pytest.raises(DataError, match="P_12_hpcp.h5"):
        api.build_index(bad_root, model=model, index_dir=ray_index, engine="ray", ray_timeout=200,
                        progress=False, log=lambda *_: None)
    assert api.query("P_1", index_dir=ray_index, k=3) == before  # the old index still answers, unchanged
    idx = tmp_path / "skip"
    out = api.build_index(bad_root, model=model, index_dir=idx, engine="ray", ray_timeout=200, skip_bad=True,
                          progress=False, log=lambda *_: None)
    assert out["count"] == 3 and out["skipped"] == 1
    assert load_bundle(idx).manifest.extra["skipped"] == [str(broken)]


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    """Three 8-s generated songs (wav, mp3 in a subfolder, flac), one corrupt mp3, and a works
    CSV grouping the two versions of W_22."""
    from coversearch.audio.decode import essentia_standard
    from coversearch.synth.generate import performance_audio

    es = essentia_standard()
    base = tmp_path_factory.mktemp("audio")
    d = base / "music"
    (d / "live").mkdir(parents=True)
    for name, work, v in [("a.wav", "W_22", 0), ("live/b.mp3", "W_22", 1), ("c.flac", "W_18", 0)]:
        a, sr = performance_audio(work, v, max_seconds=8, analysis="essentia")
        es.MonoWriter(filename=str(d / name), format=name.rsplit(".", 1)[1], sampleRate=sr)(a)
    (d / "broken.mp3").write_bytes(b"this is not an mp3 file " * 40)
    works = base / "works.csv"
    works.write_text("path,work_id\nmusic/a.wav,my song\nmusic/live/b.mp3,my song\n")
    return d, works


def test_ray_audio_build_equals_local(ray_session, audio_folder, model, tmp_path):
    """build-index --audio --engine ray extracts inside the pipeline: the same items (ids,
    tags, source, --works groups) in the same order, vectors within float tolerance, the
    same features folder (a later local build reuses it), bad audio reported alike."""
    d, works = audio_folder
    kw = dict(model=model, works=works, jobs=1, ray_timeout=200, progress=False)
    errors = {}
    for engine in ("local", "ray"):  # without --skip-bad: the same one-line error, no index
        with pytest.raises(DataError) as e:
            api.build_index(audio=d, features_dir=tmp_path / f"fail-{engine}", index_dir=tmp_path / f"fail-{engine}-i",
                            engine=engine, log=lambda *_: None, **kw)
        errors[engine] = str(e.value)
        assert not (tmp_path / f"fail-{engine}-i").exists()
    assert errors["local"] == errors["ray"] and "broken.mp3: unreadable or corrupt" in errors["ray"]
    logs, out = {}, {}
    for engine in ("ray", "local"):
        logs[engine] = []
        out[engine] = api.build_index(audio=d, features_dir=tmp_path / f"f-{engine}", index_dir=tmp_path / f"i-{engine}",
                                      engine=engine, skip_bad=True, log=logs[engine].append, **kw)
        assert out[engine]["count"] == 3 and out[engine]["skipped"] == 1
    a, b = load_bundle(tmp_path / "i-local"), load_bundle(tmp_path / "i-ray")
    assert a.items.column_names == b.items.column_names
    for col in a.items.column_names:
        va, vb = a.items.column(col).to_pylist(), b.items.column(col).to_pylist()
        if col == "path":  # the h5 in each build's own features folder
            va = [Path(p).relative_to(tmp_path / "f-local") for p in va]
            vb = [Path(p).relative_to(tmp_path / "f-ray") for p in vb]
        assert va == vb, col
    titles = dict(zip(b.items.column("source").to_pylist(), b.items.column("work_title").to_pylist()))
    assert titles[str((d / "a.wav").resolve())] == titles[str((d / "live/b.mp3").resolve())] == "my song"
    assert len(set(b.items.column("work_id").to_pylist())) == 2
    np.testing.assert_allclose(np.asarray(a.vectors), np.asarray(b.vectors), atol=1e-5)
    for m in (a.manifest, b.manifest):
        assert m.extra["skipped"] == [str(d / "broken.mp3")]
        assert m.extra["extract"] == {"extracted": 3, "unchanged": 0, "skipped": 1}
    bad_lines = {e: [ln for ln in logs[e] if "broken.mp3" in ln or ln.startswith("skipped")] for e in logs}
    assert bad_lines["local"] == bad_lines["ray"] and len(bad_lines["ray"]) == 2
    # the Ray build wrote the features folder as extract does: a local build reuses every file
    meta = "da-tacos_metadata/da-tacos_benchmark_subset_metadata.json"
    assert json.loads((tmp_path / "f-ray" / meta).read_text()) == json.loads((tmp_path / "f-local" / meta).read_text())
    again = api.build_index(audio=d, features_dir=tmp_path / "f-ray", index_dir=tmp_path / "i-again", skip_bad=True,
                            log=lambda *_: None, **{k: v for k, v in kw.items() if k != "ray_timeout"})
    c = load_bundle(tmp_path / "i-again")
    assert c.manifest.extra["extract"] == {"extracted": 0, "unchanged": 3, "skipped": 1}
    assert c.items.column("path").to_pylist() == b.items.column("path").to_pylist()
    np.testing.assert_allclose(np.asarray(c.vectors), np.asarray(b.vectors), atol=1e-5)
    assert again["count"] == 3


def test_ray_options_need_engine_ray(data, model, tmp_path):
    with pytest.raises(ConfigError, match="--engine ray"):
        api.build_index(data, model=model, index_dir=tmp_path / "x", ray_address="auto", progress=False)
    with pytest.raises(ConfigError, match="--works groups audio files: it needs --audio"):
        api.build_index(data, model=model, index_dir=tmp_path / "x", works=tmp_path / "w.csv", progress=False)
    with pytest.raises(ConfigError, match="engine"):
        api.build_index(data, model=model, index_dir=tmp_path / "x", engine="spark", progress=False)


def test_ray_resources_checked(ray_session):
    from coversearch.scale.ray_build import check_resources

    assert check_resources(ray_session)["CPU"] == 2
    with pytest.raises(ConfigError, match="wait silently"):
        check_resources(ray_session, actors=4)  # 4 x 0.5 + 0.75 > 2 CPUs


# --- Milvus (Milvus Lite) ---

def test_milvus_store_answers_like_faiss(data, model, local_index, milvus_db, tmp_path):
    idx = tmp_path / "mil"
    out = api.build_index(data, model=model, index_dir=idx, jobs=1, store="milvus", milvus_uri=milvus_db,
                          progress=False, log=lambda *_: None)
    m = out["manifest"]
    st = m.extra["store"]
    assert st["kind"] == "milvus" and st["uri"] == str(Path(milvus_db).resolve()) and st["index_type"] == "FLAT"
    assert st["collection"].startswith("coversearch_mil_")
    assert not (idx / "index.faiss").exists() and m.recall_at_10 == 1.0
    for pid in ("P_1", "P_22", "P_43"):
        a = api.query(pid, index_dir=local_index, k=6)["results"]
        b = api.query(pid, index_dir=idx, k=6)["results"]
        assert [r["perf_id"] for r in a] == [r["perf_id"] for r in b]
        np.testing.assert_allclose([r["distance"] for r in a], [r["distance"] for r in b], atol=1e-5)
    ma, mb = api.evaluate(local_index, progress=False), api.evaluate(idx, progress=False)
    assert ma["map"] == pytest.approx(mb["map"], abs=1e-6)
    # the cascade re-ranks a Milvus-backed index from the folder's own sequences
    ra = api.query("P_1", index_dir=local_index, k=5, rerank=True)["results"]
    rb = api.query("P_1", index_dir=idx, k=5, rerank=True)["results"]
    assert [r["perf_id"] for r in ra] == [r["perf_id"] for r in rb]
    # the store answers by id and by vector
    b = load_bundle(idx)
    np.testing.assert_allclose(b.store.vector_of_row(0, "P_1"), np.asarray(b.vectors[0]), atol=1e-6)
    scores, rows = b.store.search(np.asarray(b.vectors[:2]), 1)
    assert rows[:, 0].tolist() == [0, 1] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    # a query file is checked against the collection's model too
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    save_checkpoint(other, Encoder(EncoderConfig(dim=32, channels=8, hidden=16)), {"history": []})
    f = next(data.rglob("P_1_hpcp.h5"))
    with pytest.raises(IndexMismatchError, match="built by model"):
        api.query(file=f, index_dir=idx, model=other)
    assert api.query(file=f, index_dir=idx, model=model, k=1)["results"][0]["perf_id"] == "P_1"


def _vectors(n=600, d=16, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cols(n):
    return {"perf_id": [f"P_{i}" for i in range(n)], "work_id": [f"W_{i // 3}" for i in range(n)],
            "perf_title": [f"song {i}" for i in range(n)]}


@pytest.mark.parametrize("kind,expect,min_recall", [("hnsw", "HNSW", 0.95), ("ivfpq", "IVF_SQ8", 0.6)])
def test_milvus_index_kind_follows_chooser(kind, expect, min_recall, milvus_db, tmp_path):
    x = _vectors()
    spec = choose_index(len(x), x.shape[1], kind=kind)
    m = write_bundle(tmp_path / "i", x, _cols(len(x)), spec=spec, manifest_fields={"model_hash": "h1"},
                     store=StoreConfig("milvus", milvus_db, "kinds"))
    assert m.extra["store"]["index_type"] == expect and m.index_kind == kind
    # measured against exact search through the store (random 16-D vectors: IVF at nprobe 8 of 15 lists ~0.75)
    assert min_recall < m.recall_at_10 <= 1.0
    b = load_bundle(tmp_path / "i")
    s, r = b.search(x[:5], 3, exclude_rows=[0])
    assert (r >= 0).all() and 0 not in r[0].tolist()


def test_milvus_mismatch_fails_with_one_line(milvus_db, tmp_path):
    x = _vectors(n=60)
    idx = tmp_path / "mm"
    write_bundle(idx, x, _cols(60), manifest_fields={"model_hash": "aaa", "feature": "hpcp"},
                 store=StoreConfig("milvus", milvus_db, "mm"))
    man = json.loads((idx / "manifest.json").read_text())
    man["model_hash"] = "bbb"  # the folder now claims another model than the collection holds
    (idx / "manifest.json").write_text(json.dumps(man))
    r = CliRunner().invoke(main, ["query", "P_1", "--index-dir", str(idx)])
    assert r.exit_code == 4
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "model aaa" in err[0] and "model bbb" in err[0]
    man["model_hash"], man["dim"] = "aaa", 8  # and a dimension mismatch
    (idx / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(IndexMismatchError):
        load_bundle(idx)
    man["dim"] = 16
    man["extra"]["store"]["collection"] = "mm_gone"
    (idx / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(IndexMismatchError, match="mm_gone not found"):
        load_bundle(idx)


def test_milvus_rebuild_swaps_collections_and_failure_keeps_old(milvus_db, tmp_path, monkeypatch):
    from coversearch.index import bundle as bundle_mod
    from coversearch.index.milvus_store import client

    c = client(milvus_db)
    idx = tmp_path / "sw"
    x = _vectors(n=90)
    m1 = write_bundle(idx, x, _cols(90), manifest_fields={"model_hash": "h"}, store=StoreConfig("milvus", milvus_db, "sw"))
    old = m1.extra["store"]["collection"]

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle_mod, "measure", broken)
    with pytest.raises(RuntimeError):
        write_bundle(idx, x[:60], _cols(60), manifest_fields={"model_hash": "h"}, store=StoreConfig("milvus", milvus_db, "sw"))
    monkeypatch.undo()
    assert [n for n in c.list_collections() if n.startswith("sw_")] == [old]  # the new one was dropped
    b = load_bundle(idx)
    assert b.count == 90 and b.search(x[:1], 1)[1][0, 0] == 0  # the old index answers
    m2 = write_bundle(idx, x[:60], _cols(60), manifest_fields={"model_hash": "h"}, store=StoreConfig("milvus", milvus_db, "sw"))
    new = m2.extra["store"]["collection"]
    assert m2.extra["store"]["previous"]["collection"] == old  # kept one build for servers still on the old folder
    assert sorted(n for n in c.list_collections() if n.startswith("sw_")) == sorted([old, new])
    assert load_bundle(idx).count == 60
    m3 = write_bundle(idx, x[:30], _cols(30), manifest_fields={"model_hash": "h"}, store=StoreConfig("milvus", milvus_db, "sw"))
    assert sorted(n for n in c.list_collections() if n.startswith("sw_")) == sorted([new, m3.extra["store"]["collection"]])
    write_bundle(idx, x[:30], _cols(30), manifest_fields={"model_hash": "h"})  # back to FAISS: nothing left behind
    assert [n for n in c.list_collections() if n.startswith("sw_")] == []


def test_store_options_on_the_cli(data, model, local_index, milvus_db, tmp_path):
    runner = CliRunner()
    idx = tmp_path / "cli"
    r = runner.invoke(main, ["build-index", "--data", str(data), "--model", str(model), "--index-dir", str(idx),
                             "--jobs", "1", "--quiet", "--store", "milvus", "--milvus-uri", milvus_db,
                             "--milvus-collection", "cli_test"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["query", "P_1", "--k", "3", "--index-dir", str(idx), "--store", "milvus",
                             "--milvus-uri", milvus_db, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["results"][0]["work_id"] == "W_1"
    r = runner.invoke(main, ["evaluate", "--index-dir", str(idx), "--quiet"])
    assert r.exit_code == 0 and r.output.startswith("MAP ")
    r = runner.invoke(main, ["evaluate", "--index-dir", str(idx), "--store", "faiss"])
    assert r.exit_code == 4 and "keeps its vectors in milvus" in r.stderr
    r = runner.invoke(main, ["query", "P_1", "--index-dir", str(local_index), "--milvus-uri", milvus_db])
    assert r.exit_code == 4 and "keeps its vectors in FAISS" in r.stderr
    r = runner.invoke(main, ["build-index", "--data", str(data), "--index-dir", str(tmp_path / "x"), "--store", "milvus"])
    assert r.exit_code == 5 and r.stderr.strip().splitlines() == [
        "Error: --store milvus needs --milvus-uri (a server like http://host:19530, or a local FILE.db)"]
    r = runner.invoke(main, ["build-index", "--data", str(data), "--index-dir", str(tmp_path / "x"),
                             "--store", "milvus", "--milvus-uri", "localhost:19530"])
    assert r.exit_code == 5 and "give a server URI" in r.stderr


def test_serve_answers_from_milvus(data, model, local_index, milvus_db, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from coversearch.serve import ServeConfig, create_app

    idx = tmp_path / "srv"
    api.build_index(data, model=model, index_dir=idx, jobs=1, store="milvus", milvus_uri=milvus_db,
                    milvus_collection="srv", progress=False, log=lambda *_: None)
    want = [r["perf_id"] for r in api.query("P_22", index_dir=local_index, k=4)["results"]]
    with TestClient(create_app(ServeConfig(index_dir=str(idx), watch_seconds=0, milvus_uri=milvus_db))) as c:
        r = c.get("/api/query/P_22", params={"k": 4})
        assert r.status_code == 200, r.text
        assert [x["perf_id"] for x in r.json()["results"]] == want


# last: the timeout ends the module's Ray session
def test_ray_timeout_cancels_and_old_index_answers(ray_session, data, model, ray_index):
    before = api.query("P_1", index_dir=ray_index, k=3)
    with pytest.raises(CoversearchError, match="did not finish within"):
        api.build_index(data, model=model, index_dir=ray_index, engine="ray", ray_timeout=1, progress=False,
                        log=lambda *_: None)
    assert api.query("P_1", index_dir=ray_index, k=3) == before
    assert not list(ray_index.parent.glob(".idx.*"))
