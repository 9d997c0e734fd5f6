"""Label-free adaptation: mining rules, work ids never read, reproducibility,
atomic replacement, the adapted index's own model."""

import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from coversearch import api
from coversearch.adapt import FinetuneConfig, MineConfig
from coversearch.adapt.finetune import batches, components, finetune
from coversearch.adapt.mine import fdr_cut, knn, pair_quality, select
from coversearch.cli import main
from coversearch.errors import IndexMismatchError
from coversearch.index.bundle import load_bundle, write_bundle
from coversearch.model.checkpoint import load_checkpoint, save_checkpoint
from coversearch.model.config import EncoderConfig
from coversearch.model.embed import embed_sequences
from coversearch.model.encoder import Encoder

# tiny, fast settings: 3 steps of 4 pairs on 64-frame crops
MINE = MineConfig(shortlist=4, keep=0.25, fdr=0.0)  # fdr off: a tiny random catalogue has no confident pairs
TRAIN = FinetuneConfig(steps=3, pairs_per_batch=4, negatives=4, crop=64, threads=1)


@pytest.fixture
def built(tiny_root, tmp_path):
    torch.manual_seed(0)
    model = tmp_path / "m.pt"
    save_checkpoint(model, Encoder(EncoderConfig(dim=32, channels=8, hidden=16)), {"history": []})
    idx = tmp_path / "idx"
    api.build_index(tiny_root, model=model, index_dir=idx, jobs=1, progress=False, log=lambda s: None)
    return model, idx


def _adapt(idx, out, model, **kw):
    return api.adapt(idx, out_index_dir=out, model=model, mine=MINE, train=TRAIN, jobs=1, progress=False,
                     log=lambda s: None, **kw)


def test_knn_excludes_self_and_orders():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows, sims = knn(x, 5, block=7)
    full = x @ x.T
    np.fill_diagonal(full, -np.inf)
    assert (rows != np.arange(50)[:, None]).all()
    np.testing.assert_allclose(sims, -np.sort(-full, axis=1)[:, :5], rtol=1e-6)


def test_robust_z_mines_both_kinds_where_a_global_threshold_mines_one():
    # 40 items, shortlists of 4; kind A (rows < 20) aligns at scale 10, kind B at scale 1;
    # in each item's shortlist exactly one candidate (its true partner) stands out
    n, k = 40, 4
    partner = np.array([i ^ 1 for i in range(n)])
    rng = np.random.default_rng(0)
    nbrs = np.zeros((n, k), np.int64)
    for i in range(n):
        others = [j for j in range(n) if j != i and j != partner[i] and (j < 20) == (i < 20)]
        nbrs[i] = [partner[i], *rng.choice(others, k - 1, replace=False)]
    a = np.repeat(np.arange(n), k)
    b = nbrs.reshape(-1)
    cand = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0)
    scale = np.where(cand[:, 0] < 20, 10.0, 1.0)
    true = partner[cand[:, 0]] == cand[:, 1]
    quality = scale * (np.where(true, 3.0, 1.0) + 0.1 * rng.random(len(cand)))
    labels = np.arange(n) // 2
    glob, _ = select(nbrs, cand, quality, MineConfig(shortlist=k, keep=20 / (n * k), rule="global"))
    rz, _ = select(nbrs, cand, quality, MineConfig(shortlist=k, keep=20 / (n * k)))
    assert pair_quality(rz, labels)["precision"] == 1.0 and pair_quality(rz, labels)["recall"] == 1.0
    assert (glob < 20).all()  # one threshold: only the loud kind (and its false pairs)
    assert pair_quality(glob, labels)["precision"] < 1.0


def test_batches_never_reuse_an_item_and_negatives_have_own_labels():
    pairs = [[0, 1], [1, 2], [3, 4], [5, 6], [7, 8]]
    gen = batches(pairs, 30, FinetuneConfig(pairs_per_batch=3, negatives=5), np.random.default_rng(0))
    for _ in range(20):
        rows, labels = next(gen)
        assert len(set(rows)) == len(rows)
        lab = np.array(labels)
        assert all((lab == v).sum() == 2 for v in lab[lab >= 0]) and all((lab == v).sum() == 1 for v in lab[lab < 0])
    assert components(np.array(pairs), 10) == [[0, 1, 2], [3, 4], [5, 6], [7, 8]]


class _NoLabels(list):
    def __getitem__(self, i):
        raise AssertionError("adaptation read a work id")

    def __iter__(self):
        raise AssertionError("adaptation read a work id")


def test_work_ids_shuffled_or_removed_give_the_same_model(built, tmp_path, monkeypatch):
    model, idx = built
    ref = _adapt(idx, tmp_path / "a", model)
    b = load_bundle(idx)
    cols = {c: b.items.column(c).to_pylist() for c in b.items.column_names}
    fields = {"model_hash": b.manifest.model_hash, "model_name": b.manifest.model_name, "feature": b.manifest.feature,
              "hop": b.manifest.hop, "source": b.manifest.source, "extra": b.manifest.extra}
    shuffled = dict(cols, work_id=list(np.random.default_rng(1).permutation(cols["work_id"])))
    write_bundle(tmp_path / "shuf", b.vectors, shuffled, manifest_fields=fields)
    removed = dict(cols, work_id=[""] * len(cols["work_id"]))
    write_bundle(tmp_path / "none", b.vectors, removed, manifest_fields=fields)
    # the prepared cache holds work ids too: make reading them fail
    real_cache_of = api._cache_of

    def blind(bundle):
        c = real_cache_of(bundle)
        c.work_ids = _NoLabels(c.work_ids)
        return c

    monkeypatch.setattr(api, "_cache_of", blind)
    h1 = _adapt(tmp_path / "shuf", tmp_path / "a1", model)["model_hash"]
    h2 = _adapt(tmp_path / "none", tmp_path / "a2", model)["model_hash"]
    assert ref["model_hash"] == h1 == h2  # also: a seeded run is reproducible, byte for byte
    np.testing.assert_array_equal(load_bundle(tmp_path / "a").vectors, load_bundle(tmp_path / "a2").vectors)


def test_adapted_index_carries_its_model_and_query_refuses_another(built, tmp_path, tiny_root):
    model, idx = built
    out = _adapt(idx, tmp_path / "ad", model, out_model=tmp_path / "ad.pt")
    b = load_bundle(tmp_path / "ad")
    m = b.manifest
    assert m.model_hash == out["model_hash"] != out["parent_model_hash"]
    ad = m.extra["adaptation"]
    assert ad["parent_model_hash"] == load_checkpoint(model)[1]["model_hash"]
    assert ad["steps"] == 3 and ad["n_pairs"][0] >= 2 and ad["seconds"] > 0 and ad["settings"]["mine"]["keep"] == 0.25
    assert "model.pt" in m.files and b.own_model() == tmp_path / "ad" / "model.pt"
    mined = np.load(tmp_path / "ad" / "adapt_pairs.npy")  # (M, 3) round, a, b: what it learned from
    assert mined.shape == (ad["n_pairs"][0], 3) and (mined[:, 0] == 1).all() and (mined[:, 1] < mined[:, 2]).all()
    assert (tmp_path / "ad.pt").read_bytes() == (tmp_path / "ad" / "model.pt").read_bytes()
    # the adapted model loads and embeds like any other: it reproduces the index's vectors
    net, info = load_checkpoint(b.own_model())
    assert info["model_hash"] == m.model_hash and json.loads((tmp_path / "ad" / "model.json").read_text())["adapted_from"]
    from coversearch.features.cache import PreparedCache

    vec = embed_sequences(net, PreparedCache(m.extra["cache"]).sequences())
    np.testing.assert_allclose(vec, b.vectors, atol=1e-5)
    f = next(tiny_root.rglob("P_1_hpcp.h5"))
    res = api.query(file=f, index_dir=tmp_path / "ad", k=3)  # default: the folder's own model
    assert res["results"][0]["perf_id"] == "P_1"
    with pytest.raises(IndexMismatchError, match="built by model"):
        api.query(file=f, index_dir=tmp_path / "ad", k=3, model=model)
    # it carries its re-rank data and settings too: the cascade needs neither the source nor the parent folder
    assert {"sequences.npy", "offsets.npy", "rerank.json"} <= set(m.files)
    np.testing.assert_array_equal(np.asarray(b.sequences(verify_hashes=True).frames),
                                  np.asarray(load_bundle(idx).sequences().frames))
    rr = api.query(file=f, index_dir=tmp_path / "ad", k=3, rerank=True)
    assert rr["results"][0]["perf_id"] == "P_1" and "fused_score" in rr["results"][0]


def test_interrupted_adapt_leaves_the_old_index_answering(built, monkeypatch):
    model, idx = built
    before = (idx / "manifest.json").read_text()
    import coversearch.adapt as adapt_pkg

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(adapt_pkg, "finetune", boom)
    r = CliRunner().invoke(main, ["adapt", "--index-dir", str(idx), "--model", str(model), "--steps", "2",
                                  "--mine-shortlist", "4", "--keep", "0.25", "--fdr", "0", "--jobs", "1", "--quiet"])
    assert r.exit_code == 130 and "Error: interrupted" in r.stderr
    assert (idx / "manifest.json").read_text() == before
    assert api.query("P_1", index_dir=idx, k=3)["results"]
    assert sorted(os.listdir(idx.parent)) == sorted(p for p in os.listdir(idx.parent) if not p.startswith("."))


def test_build_index_adapt_in_one_command(tiny_root, built, tmp_path):
    model, _ = built
    idx = tmp_path / "one"
    r = CliRunner().invoke(main, ["build-index", "--data", str(tiny_root), "--model", str(model), "--index-dir", str(idx),
                                  "--adapt", "--steps", "2", "--mine-shortlist", "4", "--keep", "0.25", "--fdr", "0", "--jobs", "1",
                                  "--threads", "1", "--quiet"])
    assert r.exit_code == 0, r.output + r.stderr
    assert "adapted model" in r.output
    m = load_bundle(idx).manifest
    assert m.model_name == "model.pt" and m.extra["adaptation"]["steps"] == 2
    r = CliRunner().invoke(main, ["adapt", "--index-dir", str(idx), "--keep", "2", "--quiet"])
    assert r.exit_code == 5 and r.stderr.startswith("Error: --keep must be in (0, 1]")


def _finetune_case(monkeypatch, scores, **kw):
    """A tiny fine-tuning whose held-out check returns ``scores`` in turn."""
    import importlib

    ft = importlib.import_module("coversearch.adapt.finetune")  # the module (the package exports the function)
    calls = iter(scores)
    monkeypatch.setattr(ft, "partner_mrr", lambda *a, **k: next(calls))
    torch.manual_seed(0)
    net = Encoder(EncoderConfig(dim=16, channels=4, hidden=8))
    rng = np.random.default_rng(0)
    seqs = [rng.random((80, 12)).astype(np.float32) for _ in range(120)]
    pairs = np.array([[2 * i, 2 * i + 1] for i in range(60)])
    start = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = FinetuneConfig(steps=4, pairs_per_batch=4, negatives=2, crop=32, threads=1, check_every=2, holdout=0.2, **kw)
    fit = ft.finetune(net, seqs.__getitem__, len(seqs), pairs, cfg)
    return net, start, fit


def test_finetune_keeps_the_start_when_held_out_pairs_never_improve(monkeypatch):
    net, start, fit = _finetune_case(monkeypatch, [0.5, 0.4, 0.3])
    assert fit["n_held_out"] == 12 and fit["steps"] == 0 and fit["steps_run"] == 4
    assert [c[0] for c in fit["checks"]] == [0, 2, 4]
    assert all(torch.equal(v, start[k]) for k, v in net.state_dict().items())


def test_finetune_keeps_the_best_check(monkeypatch):
    net, start, fit = _finetune_case(monkeypatch, [0.3, 0.5, 0.4])
    assert fit["steps"] == 2
    assert not all(torch.equal(v, start[k]) for k, v in net.state_dict().items())


def test_anchor_penalty_keeps_embeddings_nearer_the_start(monkeypatch):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    seqs = [rng.random((80, 12)).astype(np.float32) for _ in range(40)]
    pairs = np.array([[2 * i, 2 * i + 1] for i in range(20)])
    base = Encoder(EncoderConfig(dim=16, channels=4, hidden=8))
    ref = embed_sequences(base, seqs, threads=1)
    drift = {}
    for anchor in (0.0, 50.0):
        net = Encoder(EncoderConfig(dim=16, channels=4, hidden=8))
        net.load_state_dict(base.state_dict())
        finetune(net, seqs.__getitem__, len(seqs), pairs,
                 FinetuneConfig(steps=30, pairs_per_batch=4, negatives=2, crop=32, threads=1, holdout=0, lr=3e-3,
                                anchor=anchor))
        drift[anchor] = float(1 - (embed_sequences(net, seqs, threads=1) * ref).sum(1).mean())
    assert drift[50.0] < drift[0.0]


def test_fdr_cut_counts_decoys_below_minus_t():
    score = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, -1.0])
    decoy = np.array([6.0, -2.5, 5.0, -1.5, 2.0, -0.6, -4.5])  # mirrors: -4.5 (<= -t for t <= 4.5), -2.5, -1.5, -0.6
    # n=1 (t=5): 0 decoys; n=2 (t=4): 1 (-4.5); n=3 (t=3): 1; n=4 (t=2): 2; n=5 (t=1): 3; n=6 (t=0.5): 4
    assert fdr_cut(score, decoy, 0.34) == 3
    assert fdr_cut(score, decoy, 0.5) == 4
    assert fdr_cut(score, decoy, 0.0) == 1
    assert fdr_cut(-np.abs(score), decoy, 0.5) == 0  # no positive score: nothing kept


def test_too_few_confident_pairs_keep_the_model(built, tmp_path):
    model, idx = built
    out = api.adapt(idx, out_index_dir=tmp_path / "same", model=model, mine=MineConfig(shortlist=4, keep=0.001, fdr=0.0),
                    train=TRAIN, jobs=1, progress=False, log=lambda s: None)
    assert out["adaptation"]["steps"] == 0
    np.testing.assert_array_equal(load_bundle(tmp_path / "same", load_index=False).vectors,
                                  load_bundle(idx, load_index=False).vectors)
