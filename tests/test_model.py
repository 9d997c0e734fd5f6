"""Encoder invariances, losses, sampler and checkpoint round trip."""

import numpy as np
import pytest
import torch

from coversearch.errors import ConfigError
from coversearch.model.augment import augment, crop_or_tile, stretch
from coversearch.model.checkpoint import load_checkpoint, model_hash, read_record, save_checkpoint
from coversearch.model.config import EncoderConfig, TrainConfig
from coversearch.model.embed import embed_sequences
from coversearch.model.encoder import Encoder
from coversearch.model.losses import contrastive_loss
from coversearch.model.sampler import group_by_work, pk_batches


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = Encoder(EncoderConfig(dim=64, channels=16, hidden=32))
    # move batch-norm statistics away from the identity so the test is not trivial
    m.train()
    with torch.no_grad():
        m(torch.rand(8, 64, 12))
    return m.eval()


def _seqs(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((int(rng.integers(20, 200)), 12)).astype(np.float32) for _ in range(n)]


def test_unit_norm_and_shape(model):
    e = embed_sequences(model, _seqs())
    assert e.shape == (5, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("shift", [1, 5, 11])
def test_exact_transposition_invariance(model, shift):
    s = _seqs()
    a = embed_sequences(model, s)
    b = embed_sequences(model, [np.roll(x, shift, axis=1) for x in s])
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_batch_composition_does_not_change_embeddings(model):
    s = _seqs(9)
    together = embed_sequences(model, s, batch_size=4)
    alone = np.concatenate([embed_sequences(model, [x]) for x in s])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_not_constant(model):
    e = embed_sequences(model, _seqs(6))
    assert np.abs(e[1:] - e[0]).max() > 1e-3  # distinct inputs, distinct embeddings


@pytest.mark.parametrize("name", ["supcon", "triplet", "ms"])
def test_losses_prefer_clustered_embeddings(name):
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.nn.functional.normalize(torch.eye(3, 8), dim=1)
    good = torch.nn.functional.normalize(centres[labels] + 0.01 * torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    bad = torch.nn.functional.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    assert contrastive_loss(name, good, labels) < contrastive_loss(name, bad, labels)


def test_pk_sampler_covers_works_with_positives():
    groups = group_by_work(["a", "a", "b", "b", "b", "c", "d", "d", "e", "e"])
    batches = list(pk_batches(groups, 2, 3, np.random.default_rng(0)))
    assert len(batches) == 2  # works a, b, d, e (c has one version) -> 4 // 2
    for batch in batches:
        assert len(batch) == 6
        labels = [w for _, w in batch]
        assert labels.count(0) == 3 and labels.count(1) == 3


def test_augment_shapes_and_ranges():
    rng = np.random.default_rng(0)
    x = rng.random((100, 12)).astype(np.float32)
    assert stretch(x, 1.5).shape == (150, 12)
    assert crop_or_tile(x[:10], 64, rng).shape == (64, 12)
    y = augment(x, 64, rng)
    assert y.shape == (64, 12) and y.min() >= 0 and y.max() <= 1


def test_checkpoint_round_trip(tmp_path, model):
    path = tmp_path / "m.pt"
    h = save_checkpoint(path, model, {"train_config": TrainConfig().to_dict(), "history": [{"epoch": 1}]})
    assert h == model_hash(path) and len(h) == 16
    m2, info = load_checkpoint(path)
    assert info["config"] == model.config and info["model_hash"] == h
    s = _seqs(3)
    np.testing.assert_allclose(embed_sequences(model, s), embed_sequences(m2, s), atol=1e-6)
    assert read_record(path)["history"] == [{"epoch": 1}]


def test_bad_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="model not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    with pytest.raises(ConfigError, match="not a coversearch checkpoint"):
        load_checkpoint(bad)


class _RunsCode:
    def __reduce__(self):  # unpickling would call print(...): any code could run here
        return (print, ("pwned",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path, model, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"encoder_config": model.config.to_dict(), "state_dict": model.state_dict(),
                "record": {"x": _RunsCode()}}, p)
    with pytest.raises(ConfigError, match="evil.pt"):
        load_checkpoint(p)
    assert "pwned" not in capsys.readouterr().out


def test_shipped_checkpoint_loads_weights_only():
    from coversearch.model.checkpoint import default_model_path

    blob = torch.load(default_model_path(), map_location="cpu", weights_only=True)
    assert set(blob) == {"encoder_config", "state_dict", "record"}
    net, info = load_checkpoint()
    assert info["model_hash"] == "34db65734765f730"  # unchanged: the shipped file was not re-saved


def test_record_with_numpy_values_is_stored_as_plain_types(tmp_path, model):
    p = tmp_path / "m.pt"
    save_checkpoint(p, model, {"history": [{"val_map": np.float32(0.5), "ids": np.arange(3)}], "t": (1, 2)})
    _, info = load_checkpoint(p)
    assert info["record"]["history"][0]["ids"] == [0, 1, 2] and info["record"]["t"] == [1, 2]
