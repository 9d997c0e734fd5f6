"""The earlier attempts (coversearch.earlier): each trains and embeds on a tiny
set with the right shapes; the quantum simulation obeys the gates' algebra;
benchmarks/baselines.py --quick runs end to end through the engine's index."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from coversearch.earlier.aggregate import Standardiser, aggregate_features
from coversearch.earlier.autoencoder import encode, train_autoencoder
from coversearch.earlier.quantum import QuantumLayer, apply_cnot, apply_single, z_expectations
from coversearch.earlier.siamese import PairConfig, balanced_pairs, embed_fixed, fixed_length, train_pairs
from tests.conftest import write_perf


def _seqs(n_works=6, versions=3, seed=0):
    rng = np.random.default_rng(seed)
    seqs, works = [], []
    for w in range(n_works):
        t = np.abs(rng.normal(size=(int(rng.integers(40, 90)), 12))).astype(np.float32)
        for _ in range(versions):
            seqs.append(np.roll(t, int(rng.integers(12)), axis=1) + 0.1 * rng.random(t.shape).astype(np.float32))
            works.append(f"W_{w}")
    return seqs, np.array(works)


def test_aggregate_features_nan_aware_and_named():
    a = np.ones((5, 12), np.float32)
    a[0] = np.nan  # one all-NaN frame is ignored, not propagated
    b = np.full((3, 12), 2.0, np.float32)
    x, names = aggregate_features({"hpcp": [a, b], "crema": [b, a]})
    assert x.shape == (2, 24) and names[0] == "hpcp_0" and names[12] == "crema_0"
    assert np.allclose(x[0, :12], 1.0) and np.allclose(x[1, :12], 2.0)
    z = Standardiser(x)(x)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-6)
    with pytest.raises(ValueError, match="crema"):
        aggregate_features({"hpcp": [a, b], "crema": [a]})


@pytest.mark.parametrize("kind, depth", [("linear", 1), ("deep", 5)])
def test_autoencoders_train_and_encode(kind, depth):
    x = np.random.default_rng(0).normal(size=(40, 12)).astype(np.float32)
    model, rec = train_autoencoder(x, kind=kind, epochs=30, seed=0)
    assert encode(model, x).shape == (40, 20)
    assert sum(isinstance(m, torch.nn.Linear) for m in model.encoder) == depth
    assert rec["loss"][-1] < rec["loss"][0]  # it learns to reconstruct


def test_fixed_length_minmax_pad_and_crop():
    s = np.arange(24, dtype=np.float32).reshape(2, 12)
    x = fixed_length(s, 5)
    assert x.shape == (5, 12) and x.min() == 0 and x.max() == 1 and (x[2:] == 0).all()
    long = np.random.default_rng(0).random((50, 12)).astype(np.float32)
    assert fixed_length(long, 10).shape == (10, 12)


def test_balanced_pairs():
    pairs, same = balanced_pairs([[0, 1, 2], [3], [4, 5]], 10, np.random.default_rng(0))
    work = {0: 0, 1: 0, 2: 0, 3: 1, 4: 2, 5: 2}
    assert same.sum() == 5
    for (a, b), s in zip(pairs, same):
        assert (work[a] == work[b]) == bool(s) and a != b


@pytest.mark.parametrize("arch, dim", [("cnn", 64), ("resnet", 128), ("resnet_quantum", 128)])
def test_pair_models_train_and_embed(arch, dim):
    seqs, works = _seqs()
    cfg = PairConfig(arch=arch, length=32, steps=2, batch=4, seed=0)
    model, rec = train_pairs(seqs, works, cfg, threads=1)
    assert len(rec["loss"]) == 2 and all(np.isfinite(rec["loss"]))
    e = embed_fixed(model, seqs)
    assert e.shape == (len(seqs), dim) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    iv = model.index_vectors(e)
    assert iv.shape == e.shape and np.isfinite(iv).all()
    # a fixed seed gives the same model
    again, _ = train_pairs(seqs, works, cfg, threads=1)
    assert np.allclose(embed_fixed(again, seqs[:3]), e[:3], atol=1e-5)


def test_quantum_gates_and_readout():
    n = 2
    s = torch.zeros(1, 4, dtype=torch.complex64)
    s[0, 2] = 1  # |10>
    assert torch.allclose(apply_cnot(s, 0, 1, n), torch.tensor([[0, 0, 0, 1]], dtype=torch.complex64))
    ry = lambda t: torch.tensor([[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]],
                                dtype=torch.complex64)  # noqa: E731
    zero = torch.zeros(1, 4, dtype=torch.complex64)
    zero[0, 0] = 1
    assert torch.allclose(z_expectations(zero, n), torch.tensor([[1.0, 1.0]]))
    # RY(pi/2) on qubit 1: <Z_1> = cos(pi/2) = 0, qubit 0 untouched
    assert torch.allclose(z_expectations(apply_single(zero, ry(math.pi / 2), 1, n), n), torch.tensor([[1.0, 0.0]]),
                          atol=1e-6)
    q = QuantumLayer(16, n_qubits=4, n_layers=2)
    amps = torch.nn.functional.normalize(torch.randn(5, 16), dim=1)
    z = q.circuit(amps)
    assert z.shape == (5, 4) and (z.abs() <= 1 + 1e-5).all()
    out = q(torch.randn(5, 16))
    assert out.shape == (5, 16) and torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)
    out.sum().backward()
    assert q.theta.grad is not None and q.theta.grad.abs().sum() > 0


def _tiny_root(root: Path, n_works: int, versions: int, seed: int):
    rng = np.random.default_rng(seed)
    for w in range(n_works):
        t = np.abs(rng.normal(size=(120, 12))).astype(np.float32)
        for v in range(versions if w % 3 else 1):
            x = np.roll(t, int(rng.integers(12)), axis=1) + 0.3 * rng.random(t.shape).astype(np.float32)
            x /= x.max(axis=1, keepdims=True)
            wid, pid = f"W_{seed}{w:02d}", f"P_{seed}{w:02d}{v}"
            write_perf(root / "da-tacos_benchmark_subset_hpcp" / f"{wid}_hpcp" / f"{pid}_hpcp.h5", "hpcp", x, wid, pid,
                       hop_length=np.int64(4096))
    return root


@pytest.mark.slow
def test_baselines_quick_end_to_end(tmp_path):
    """Every approach through the engine's index and metrics on tiny sets (--quick)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import baselines

    tr = _tiny_root(tmp_path / "train", 24, 4, 1)
    ev = _tiny_root(tmp_path / "eval", 12, 3, 2)
    out = tmp_path / "b.json"
    assert baselines.main(["--quick", "--train", str(tr), "--eval", str(ev), "--out", str(out),
                           "--work", str(tmp_path / "w"), "--threads", "1"]) == 0
    doc = json.loads(out.read_text())
    keys = {s["key"] for s in doc["summary"]}
    assert keys == {"encoder", "a_linear", "a_deep", "mean_chroma", "ftm2d", "cnn", "resnet", "resnet_quantum",
                    "alignment"}
    for s in doc["summary"]:
        assert 0 < s["map"] <= 1 and s["mr1"] >= 1 and 0 <= s["pair_auc"] <= 1, s
    # every learned row went through an index folder written by the engine
    assert (tmp_path / "w" / "idx-cnn-s0" / "manifest.json").is_file()
    assert doc["aggregated_features"]["n_features"] == 12 and "mfcc" in doc["aggregated_features"]["missing"]
    assert "| approach |" in baselines.markdown(doc)
    # each step's wall and CPU time and load are recorded; the pair models check their own training pairs
    assert {"encoder", "a", "e", "b", "c", "d", "alignment"} <= set(doc["step_timing"])
    assert all(t["wall_s"] >= 0 and t["cpu_s"] >= 0 for t in doc["step_timing"].values())
    assert "| step | wall |" in baselines.markdown(doc)
    for r in doc["rows"]:
        if r["key"] in ("cnn", "resnet", "resnet_quantum"):
            assert 0 <= r["train_pair_auc"] <= 1 and r["train_pairs"] > 0
            assert ("train_pair_auc_head" in r) == (r["key"] != "cnn")
    # the same table assembled from the step files alone (--collect computes nothing)
    col = tmp_path / "c.json"
    assert baselines.main(["--collect", "--work", str(tmp_path / "w"), "--out", str(col)]) == 0
    doc2 = json.loads(col.read_text())
    assert doc2["complete"] and [s["map"] for s in doc2["summary"]] == [s["map"] for s in doc["summary"]]
