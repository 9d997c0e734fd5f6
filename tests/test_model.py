"""Encoder invariances, losses, sampler and checkpoint round trip."""

import json

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


@pytest.fixture(scope="module", params=[2, 4], ids=["stride2", "stride4"])
def model(request):
    torch.manual_seed(0)
    m = Encoder(EncoderConfig(dim=64, channels=16, hidden=32, stride=request.param))
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
    other = rng.random((80, 12)).astype(np.float32)
    z = augment(x, 64, rng, harmonics=0.5, other=other, mix=0.5)
    assert z.shape == (64, 12) and z.min() >= 0 and z.max() <= 1


def test_optional_augmentations_change_the_view_and_leave_a_default_run_unchanged():
    x = np.random.default_rng(1).random((100, 12)).astype(np.float32)
    other = np.random.default_rng(2).random((90, 12)).astype(np.float32)
    plain_view = augment(x, 64, np.random.default_rng(5))
    off = augment(x, 64, np.random.default_rng(5), harmonics=0.0, other=other, mix=0.0)
    np.testing.assert_array_equal(plain_view, off)  # off = no extra draws, same view
    timbre = augment(x, 64, np.random.default_rng(5), harmonics=0.5)
    mixed = augment(x, 64, np.random.default_rng(5), other=other, mix=0.5)
    assert np.abs(timbre - plain_view).max() > 1e-3 and np.abs(mixed - plain_view).max() > 1e-3


def test_old_records_without_stride_load_as_stride_2():
    cfg = EncoderConfig.from_dict({k: v for k, v in EncoderConfig().to_dict().items() if k != "stride"})
    assert cfg.stride == 2
    with pytest.raises(ValueError, match="stride"):
        Encoder(EncoderConfig(stride=0))


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


@pytest.fixture
def train_root(tmp_path):
    """14 works x 3 versions of noisy, transposed chroma templates (enough for 4-work batches)."""
    from tests.conftest import write_perf

    rng = np.random.default_rng(1)
    root = tmp_path / "train"
    for w in range(14):
        template = np.abs(rng.normal(size=(300, 12))).astype(np.float32)
        for v in range(3):
            x = np.roll(template, int(rng.integers(0, 12)), axis=1) + 0.3 * rng.random((300, 12)).astype(np.float32)
            wid, pid = f"W_{w}", f"P_{w * 10 + v}"
            write_perf(root / "da-tacos_benchmark_subset_hpcp" / f"{wid}_hpcp" / f"{pid}_hpcp.h5", "hpcp",
                       x / x.max(axis=1, keepdims=True), wid, pid, hop_length=np.int64(2048))
    return root


def test_resume_continues_a_run_exactly(train_root, tmp_path):
    """A seeded run interrupted after epoch 1 and resumed ends with the same
    history and weights as the uninterrupted run."""
    from coversearch import api

    kw = dict(encoder_config=EncoderConfig(dim=16, channels=4, hidden=8, n_temporal=1),
              train_config=TrainConfig(epochs=3, works_per_batch=4, versions_per_work=2, crop=64, val_fraction=0.3,
                                       threads=1, seed=3),
              jobs=1, progress=False)
    full = api.train(train_root, tmp_path / "full.pt", run_dir=tmp_path / "full", log=lambda m: None, **kw)

    def stop_after_first_epoch(msg):
        if msg.startswith("epoch=1 "):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.train(train_root, tmp_path / "cut.pt", run_dir=tmp_path / "cut", log=stop_after_first_epoch, **kw)
    assert json.loads((tmp_path / "cut" / "history.json").read_text())["history"][0]["epoch"] == 1
    resumed = api.train(None, None, resume=tmp_path / "cut", progress=False, log=lambda m: None, jobs=1)

    def strip(h):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in h]

    assert len(full["history"]) == 3
    assert strip(resumed["history"]) == strip(full["history"])
    assert resumed["best"] == full["best"]
    a, _ = load_checkpoint(tmp_path / "full.pt")
    b, _ = load_checkpoint(resumed["out"])
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    for name in ("config.json", "history.json", "best.pt", "best.json", "last.pt"):
        assert (tmp_path / "cut" / name).is_file(), name
    with pytest.raises(ConfigError):
        api.train(None, None, resume=tmp_path / "nothing-here")
