"""Every CLI verb through click's CliRunner, including bad input: one line,
non-zero exit, no traceback, nothing on disk lost."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from coversearch.cli import main
from coversearch.model.checkpoint import save_checkpoint
from coversearch.model.config import EncoderConfig
from coversearch.model.encoder import Encoder
from tests.conftest import write_perf


def _model(path, dim=32, seed=0):
    torch.manual_seed(seed)
    m = Encoder(EncoderConfig(dim=dim, channels=8, hidden=16))
    save_checkpoint(path, m, {"history": []})
    return path


@pytest.fixture
def built(tiny_root, tmp_path):
    model = _model(tmp_path / "m.pt")
    idx = tmp_path / "idx"
    r = CliRunner().invoke(main, ["build-index", "--data", str(tiny_root), "--model", str(model),
                                  "--index-dir", str(idx), "--jobs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return tiny_root, model, idx


def _one_line_error(r, *needles):
    assert r.exit_code != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: "), r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n in err[0], err[0]


def test_help_lists_verbs():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for verb in ["build-index", "query", "evaluate", "train"]:
        assert verb in r.output


def test_build_query_evaluate(built, tmp_path):
    _, _, idx = built
    runner = CliRunner()
    r = runner.invoke(main, ["query", "P_1", "--k", "5", "--index-dir", str(idx)])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("query P_1 (work W_1)") and len(lines) == 2 + 5
    r = runner.invoke(main, ["query", "P_1", "--k", "3", "--index-dir", str(idx), "--json"])
    out = json.loads(r.output)
    assert [x["rank"] for x in out["results"]] == [1, 2, 3]
    assert all(x["perf_id"] != "P_1" for x in out["results"])
    assert all(0 <= x["distance"] <= 2 for x in out["results"])
    js = tmp_path / "m.json"
    r = runner.invoke(main, ["evaluate", "--index-dir", str(idx), "--json", str(js), "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("MAP ")
    m = json.loads(js.read_text())
    assert m["n_items"] == 18 and m["n_queries"] == 18
    # first-stage recall at K: K = max(1, round(share * 18)), in the table and the JSON
    assert [r["k"] for r in m["recall_at_k"]] == [1, 1, 1, 1, 2]
    assert all(0.0 <= r["recall"] <= 1.0 for r in m["recall_at_k"])
    assert "recall@K 0.5% (1)" in r.output


def test_query_file_not_in_index(built):
    root, model, idx = built
    f = next(root.rglob("P_11_hpcp.h5"))
    r = CliRunner().invoke(main, ["query", "--file", str(f), "--k", "2", "--index-dir", str(idx), "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    # the file is in the index too: it must come back first at distance ~0
    assert out["results"][0]["perf_id"] == "P_11" and out["results"][0]["distance"] < 1e-4


def test_unknown_id_suggests(built):
    _, _, idx = built
    r = CliRunner().invoke(main, ["query", "P_12345", "--index-dir", str(idx)])
    _one_line_error(r, "P_12345")


def test_missing_index(tmp_path):
    r = CliRunner().invoke(main, ["query", "P_1", "--index-dir", str(tmp_path / "none")])
    _one_line_error(r, "build-index")
    r = CliRunner().invoke(main, ["evaluate", "--index-dir", str(tmp_path / "none")])
    _one_line_error(r)


def test_index_built_by_another_model(built, tmp_path):
    root, _, idx = built
    other = _model(tmp_path / "other.pt", dim=64, seed=1)
    f = next(root.rglob("P_11_hpcp.h5"))
    r = CliRunner().invoke(main, ["query", "--file", str(f), "--index-dir", str(idx), "--model", str(other)])
    _one_line_error(r)


def test_not_datacos_and_bad_files(tiny_root, tmp_path):
    model = _model(tmp_path / "m.pt")
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    r = runner.invoke(main, ["build-index", "--data", str(tmp_path / "empty"), "--model", str(model),
                             "--index-dir", str(tmp_path / "i"), "--quiet"])
    _one_line_error(r, "not a Da-TACOS folder")
    bad = next(tiny_root.rglob("P_2_hpcp.h5"))
    bad.write_bytes(bad.read_bytes()[:300])
    r = runner.invoke(main, ["build-index", "--data", str(tiny_root), "--model", str(model),
                             "--index-dir", str(tmp_path / "i"), "--quiet", "--jobs", "1"])
    _one_line_error(r, "P_2_hpcp.h5", "--skip-bad")
    assert not (tmp_path / "i").exists()
    r = runner.invoke(main, ["build-index", "--data", str(tiny_root), "--model", str(model),
                             "--index-dir", str(tmp_path / "i"), "--quiet", "--jobs", "1", "--skip-bad"])
    assert r.exit_code == 0, r.output
    assert "indexed 17 performances" in r.output and "P_2_hpcp.h5" in r.stderr


def test_file_with_no_12_bins_and_empty(tmp_path, built):
    _, model, idx = built
    f = write_perf(tmp_path / "P_99_hpcp.h5", "hpcp", np.zeros((30, 7), np.float32), "W_9", "P_99")
    r = CliRunner().invoke(main, ["query", "--file", str(f), "--index-dir", str(idx), "--model", str(model)])
    _one_line_error(r, "P_99_hpcp.h5", "12-bin")
    f = write_perf(tmp_path / "P_98_hpcp.h5", "hpcp", np.zeros((0, 12), np.float32), "W_9", "P_98")
    r = CliRunner().invoke(main, ["query", "--file", str(f), "--index-dir", str(idx), "--model", str(model)])
    _one_line_error(r, "P_98_hpcp.h5", "empty")


def test_interrupted_build_keeps_previous_index(built, monkeypatch):
    root, model, idx = built
    before = {p.name: p.read_bytes() for p in idx.iterdir()}
    import coversearch.index.bundle as bundle

    def boom(*a, **k):  # interrupted while the new index files are being written
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle, "save_faiss", boom)
    r = CliRunner().invoke(main, ["build-index", "--data", str(root), "--model", str(model), "--index-dir", str(idx), "--quiet"])
    assert r.exit_code != 0
    assert {p.name: p.read_bytes() for p in idx.iterdir()} == before
    assert not [p for p in idx.parent.iterdir() if p.name.startswith(".idx")]


def test_corrupt_index_file(built):
    _, _, idx = built
    (idx / "vectors.npy").write_bytes(b"junk")
    r = CliRunner().invoke(main, ["query", "P_1", "--index-dir", str(idx)])
    _one_line_error(r)


def test_query_and_evaluate_with_rerank(built):
    _, _, idx = built
    runner = CliRunner()
    plain = json.loads(runner.invoke(main, ["query", "P_1", "--k", "17", "--index-dir", str(idx), "--json"]).output)
    r = runner.invoke(main, ["query", "P_1", "--k", "17", "--index-dir", str(idx), "--json", "--rerank", "--shortlist", "50"])
    assert r.exit_code == 0, r.output
    rr = json.loads(r.output)
    # K larger than the index: every other item is still there, only the order may change
    assert sorted(x["perf_id"] for x in rr["results"]) == sorted(x["perf_id"] for x in plain["results"])
    assert all("fused_score" in x for x in rr["results"])
    fused = [x["fused_score"] for x in rr["results"]]
    assert fused == sorted(fused, reverse=True)
    r = runner.invoke(main, ["evaluate", "--index-dir", str(idx), "--rerank", "--shortlist", "5", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "re-ranked shortlist 5" in r.output
    assert "first stage (cosine) recall@K" in r.output
    # the re-rank path reports the same first-stage recall as the plain one
    from coversearch import api

    plain_m = api.evaluate(idx, progress=False)
    rr_m = api.evaluate(idx, progress=False, rerank=True, shortlist=5)
    assert rr_m["recall_at_k"] == plain_m["recall_at_k"]
    # a config given to query replaces the index's: weight 0 keeps the cosine order
    from coversearch.rerank import RerankConfig

    w0 = api.query("P_1", index_dir=idx, k=17, rerank=True, shortlist=50, rerank_config=RerankConfig(weight=0.0))
    assert [x["perf_id"] for x in w0["results"]] == [x["perf_id"] for x in plain["results"]]


def test_index_is_self_contained_for_rerank(built, tmp_path):
    """The index folder carries the sequences and rerank.json (both in the
    manifest): deleting the source data changes nothing."""
    root, _, idx = built
    manifest = json.loads((idx / "manifest.json").read_text())
    for name in ("sequences.npy", "offsets.npy", "rerank.json"):
        assert name in manifest["files"], name
    before = json.loads(CliRunner().invoke(main, ["query", "P_1", "--k", "5", "--index-dir", str(idx), "--json",
                                                  "--rerank"]).output)
    moved = tmp_path / "moved"
    shutil.move(str(root), moved)  # the source data and its prepared cache are gone
    r = CliRunner().invoke(main, ["query", "P_1", "--k", "5", "--index-dir", str(idx), "--json", "--rerank"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["results"] == before["results"]


def test_rerank_data_that_no_longer_matches_fails_with_one_line(built, tmp_path):
    _, _, idx = built
    runner = CliRunner()
    # rerank.json edited by hand after the build: same keys, another weight
    bad = tmp_path / "bad1"
    shutil.copytree(idx, bad)
    cfg = json.loads((bad / "rerank.json").read_text())
    cfg["config"]["weight"] = 0.9
    (bad / "rerank.json").write_text(json.dumps(cfg))
    r = runner.invoke(main, ["query", "P_1", "--index-dir", str(bad), "--rerank"])
    _one_line_error(r, "rerank.json")
    # sequences overwritten in place (same size): evaluate checks their sha256
    bad = tmp_path / "bad2"
    shutil.copytree(idx, bad)
    seqs = np.load(bad / "sequences.npy")
    np.save(bad / "sequences.npy", seqs[::-1].copy())
    r = runner.invoke(main, ["evaluate", "--index-dir", str(bad), "--rerank", "--quiet"])
    _one_line_error(r, "sequences.npy", "sha256")
    # offsets replaced by another index's: caught on every query
    bad = tmp_path / "bad3"
    shutil.copytree(idx, bad)
    off = np.load(bad / "offsets.npy")
    off[1:-1] += 1
    np.save(bad / "offsets.npy", off)
    r = runner.invoke(main, ["query", "P_1", "--index-dir", str(bad), "--rerank"])
    _one_line_error(r, "offsets.npy")
    # an index written without re-rank data (an older build) says to rebuild
    bad = tmp_path / "bad4"
    shutil.copytree(idx, bad)
    m = json.loads((bad / "manifest.json").read_text())
    for name in ("sequences.npy", "offsets.npy"):
        del m["files"][name]
        (bad / name).unlink()
    (bad / "manifest.json").write_text(json.dumps(m))
    r = runner.invoke(main, ["query", "P_1", "--index-dir", str(bad), "--rerank"])
    _one_line_error(r, "build-index")
    assert runner.invoke(main, ["query", "P_1", "--index-dir", str(bad)]).exit_code == 0  # plain search still works
