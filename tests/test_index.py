"""Tests of coversearch.index: choose, store, table, manifest, bundle."""

import json
import subprocess
import sys

import numpy as np
import pytest

from coversearch.errors import IndexMismatchError, UnknownIdError
from coversearch.index.bundle import load_bundle, write_bundle
from coversearch.index.choose import FLAT_MAX, HNSW_MAX, IVFPQ_MIN, choose_index, estimate_bytes
from coversearch.index.manifest import Manifest
from coversearch.index.store import build_faiss, load_faiss, save_faiss, search
from coversearch.index.table import read_items, write_items


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n=3000, d=32, clusters=60, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((clusters, d))
    lab = rng.integers(0, clusters, n)
    return unit(c[lab] + noise * rng.standard_normal((n, d))), lab


def columns(n):
    return {
        "perf_id": [f"P_{i}" for i in range(n)],
        "work_id": [f"W_{i // 4}" for i in range(n)],
        "perf_artist": [f"artist {i}" for i in range(n)],
        "release_year": [1990 + i % 30 if i % 3 else "" for i in range(n)],
    }


# ---------------------------------------------------------------- choose
def test_choose_auto_boundaries():
    assert choose_index(1, 128).kind == "flat"
    assert choose_index(FLAT_MAX, 128).kind == "flat"
    assert choose_index(FLAT_MAX + 1, 128).kind == "hnsw"
    assert choose_index(HNSW_MAX, 128).kind == "hnsw"
    assert choose_index(HNSW_MAX + 1, 128).kind == "ivfpq"


def test_choose_memory_budget():
    n, d = 15_000, 128
    assert choose_index(n, d, memory_budget_bytes=estimate_bytes("flat", n, d)).kind == "flat"
    spec = choose_index(n, d, memory_budget_bytes=1_000_000)
    assert spec.kind == "ivfpq" and "memory" in spec.note
    big = 1_000_000
    hn = choose_index(big, d, memory_budget_bytes=estimate_bytes("flat", big, d) + 10)
    assert hn.kind == "ivfpq"  # graph does not fit on top of raw vectors


def test_choose_params_scale_and_clamp():
    p = choose_index(1_000_000, 128, kind="ivfpq").params
    assert p["nlist"] == 4000 and p["nbits"] == 8 and 128 % p["m"] == 0
    small = choose_index(1000, 128, kind="ivfpq").params
    assert small["nlist"] <= 1000 // 39 and small["nbits"] < 8
    assert 1 <= small["nprobe"] <= small["nlist"]
    assert choose_index(IVFPQ_MIN - 1, 8, kind="ivfpq").kind == "flat"
    assert choose_index(5, 8, kind="hnsw").kind == "hnsw"
    with pytest.raises(ValueError):
        choose_index(10, 8, kind="lsh")
    with pytest.raises(ValueError):
        choose_index(0, 8)


# ---------------------------------------------------------------- store
@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_store_recall_and_round_trip(tmp_path, kind):
    x, _ = clustered()
    spec = choose_index(len(x), x.shape[1], kind=kind)
    index = build_faiss(x, spec)
    save_faiss(index, tmp_path / "i.faiss")
    index = load_faiss(tmp_path / "i.faiss", spec)
    q = x[:200]
    scores, ids = search(index, q, 10)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])
    assert recall >= {"flat": 1.0, "hnsw": 0.95, "ivfpq": 0.5}[kind]
    assert np.all(np.diff(scores, axis=1) <= 1e-5)  # descending cosines
    if kind != "ivfpq":
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_load_faiss_missing_and_corrupt(tmp_path):
    with pytest.raises(IndexMismatchError):
        load_faiss(tmp_path / "none.faiss")
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(IndexMismatchError):
        load_faiss(tmp_path / "bad.faiss")


# ---------------------------------------------------------------- table / manifest
def test_items_table_round_trip(tmp_path):
    write_items(tmp_path / "items.parquet", columns(10))
    t = read_items(tmp_path / "items.parquet")
    assert t.column_names[:2] == ["perf_id", "work_id"]
    assert t.column("perf_id").to_pylist()[3] == "P_3"
    assert t.num_rows == 10


def test_manifest_rejects_bad_json(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_text("{not json")
    with pytest.raises(IndexMismatchError, match="corrupt"):
        Manifest.read(p)
    p.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(IndexMismatchError, match="format_version"):
        Manifest.read(p)
    m = Manifest(model_hash="h", dim=4, count=2, index_kind="flat")
    assert Manifest.from_dict(json.loads(m.to_json())) == m


# ---------------------------------------------------------------- bundle
@pytest.fixture
def bundle_dir(tmp_path):
    x, _ = clustered(n=400, d=16)
    d = tmp_path / "idx"
    write_bundle(d, x, columns(len(x)), manifest_fields={"model_hash": "m1", "feature": "hpcp", "hop": 10240})
    return d, x


def test_bundle_round_trip_matches_brute_force(bundle_dir):
    d, x = bundle_dir
    b = load_bundle(d, verify_hashes=True)
    assert b.manifest.count == 400 and b.manifest.dim == 16
    assert b.manifest.index_kind == "flat" and b.manifest.recall_at_10 == 1.0
    assert b.manifest.feature == "hpcp"
    q = x[[5, 17]]
    scores, rows = b.search(q, 7)
    truth = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, truth, 1), atol=1e-5)
    assert [set(r) for r in rows] == [set(t) for t in truth]
    s2, r2 = b.search(b.vector_of("P_5"), 5, exclude_rows=[b.row_of("P_5")])
    assert 5 not in r2[0] and r2.shape == (1, 5)
    np.testing.assert_allclose(np.asarray(b.vectors), x, atol=1e-6)


def test_bundle_search_pads_when_k_exceeds_count(bundle_dir):
    d, _ = bundle_dir
    b = load_bundle(d)
    s, r = b.search(b.vectors[:1], 500, exclude_rows=[0])
    assert (r[0, :399] >= 0).all() and (r[0, 399:] == -1).all()


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_bundle_approximate_kinds_record_recall(tmp_path, kind):
    x, _ = clustered(n=2000, d=32)
    m = write_bundle(tmp_path / kind, x, columns(len(x)),
                     spec=choose_index(len(x), 32, kind=kind), manifest_fields={"model_hash": "m"})
    assert m.index_kind == kind and 0.3 < m.recall_at_10 <= 1.0
    assert m.query_latency_ms > 0
    b = load_bundle(tmp_path / kind)
    _, rows = b.search(x[:3], 5)
    assert (rows >= 0).all()


def test_missing_index_message(tmp_path):
    with pytest.raises(IndexMismatchError, match="build-index"):
        load_bundle(tmp_path / "nothing")


def test_missing_file_and_count_mismatch(bundle_dir):
    d, x = bundle_dir
    (d / "index.faiss").unlink()
    with pytest.raises(IndexMismatchError, match="index.faiss"):
        load_bundle(d)


def test_items_count_mismatch(bundle_dir):
    d, _ = bundle_dir
    write_items(d / "items.parquet", columns(399))
    # keep the recorded size so the row-count check is what fires
    m = json.loads((d / "manifest.json").read_text())
    m["files"]["items.parquet"]["bytes"] = (d / "items.parquet").stat().st_size
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError, match="399 rows"):
        load_bundle(d)


def test_manifest_count_mismatch(bundle_dir):
    d, _ = bundle_dir
    m = json.loads((d / "manifest.json").read_text())
    m["count"] = 401
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexMismatchError):
        load_bundle(d)


def test_corrupt_manifest(bundle_dir):
    d, _ = bundle_dir
    (d / "manifest.json").write_text("{")
    with pytest.raises(IndexMismatchError, match="corrupt"):
        load_bundle(d)


def test_truncated_vectors(bundle_dir):
    d, _ = bundle_dir
    data = (d / "vectors.npy").read_bytes()
    (d / "vectors.npy").write_bytes(data[:-64])
    with pytest.raises(IndexMismatchError, match="vectors.npy"):
        load_bundle(d)


def test_failed_write_keeps_previous_bundle(bundle_dir, monkeypatch):
    d, x = bundle_dir
    import coversearch.index.bundle as bundle_mod

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bundle_mod, "save_faiss", boom)
    with pytest.raises(RuntimeError):
        write_bundle(d, x[:50], columns(50), manifest_fields={"model_hash": "m2"})
    b = load_bundle(d)
    assert b.manifest.count == 400 and b.manifest.model_hash == "m1"
    assert [p.name for p in d.parent.iterdir() if p.name.startswith(".")] == []


def test_write_rejects_bad_input(tmp_path):
    x, _ = clustered(n=10, d=4)
    with pytest.raises(ValueError, match="rows"):
        write_bundle(tmp_path / "a", x, columns(9))
    cols = columns(10)
    cols["perf_id"][3] = "P_0"
    with pytest.raises(ValueError, match="duplicate"):
        write_bundle(tmp_path / "a", x, cols)
    assert not (tmp_path / "a").exists()


def test_unknown_id_suggestions(bundle_dir):
    d, _ = bundle_dir
    b = load_bundle(d, load_index=False)
    with pytest.raises(UnknownIdError, match="P_22") as e:
        b.row_of("P_22x")
    assert "did you mean" in str(e.value)
    with pytest.raises(UnknownIdError, match="P_3"):
        b.row_of("p3")


def test_model_mismatch_message(bundle_dir):
    d, _ = bundle_dir
    b = load_bundle(d, load_index=False)
    b.check_model("m1", 16)
    with pytest.raises(IndexMismatchError, match=r"m1 \(dim 16\).*m9 \(dim 32\)"):
        b.check_model("m9", 32)


def test_query_by_id_does_not_import_torch(bundle_dir):
    d, _ = bundle_dir
    code = (
        "import sys\n"
        "from coversearch.index.bundle import load_bundle\n"
        f"b = load_bundle({str(d)!r})\n"
        "r = b.row_of('P_22')\n"
        "s, rows = b.search(b.vector_of('P_22'), 5, exclude_rows=[r])\n"
        "assert rows.shape == (1, 5)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
