"""Tests of coversearch.evaluate.baselines on generated chroma."""

import numpy as np
import pytest

from coversearch.evaluate.baselines import (
    chrompwr,
    evaluate_ftm2d,
    evaluate_mean_chroma,
    ftm2d_embeddings,
    ftm2d_features,
    mean_chroma_embeddings,
)


def make_versions(works=15, per=4, t=240, seed=0):
    """Each work: a random chord sequence; versions: transposed, stretched, noisy."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for w in range(works):
        chords = rng.random((t // 20, 12)) ** 4  # sparse-ish pitch profiles
        base = np.repeat(chords, 20, axis=0)  # (t, 12)
        for _ in range(per):
            rate = rng.uniform(0.9, 1.1)
            idx = np.clip((np.arange(int(t / rate)) * rate).astype(int), 0, t - 1)
            v = np.roll(base[idx], rng.integers(12), axis=1)
            v = v + 0.05 * rng.random(v.shape)
            seqs.append((v / v.max(axis=1, keepdims=True)).astype(np.float32))
            labels.append(f"W_{w}")
    return seqs, labels


def test_mean_chroma_embeddings_unit_rows():
    seqs, _ = make_versions(works=2, per=2)
    e = mean_chroma_embeddings(seqs)
    assert e.shape == (4, 12) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)


def test_mean_chroma_is_transposition_invariant():
    seqs, labels = make_versions(works=2, per=1)
    rolled = [np.roll(seqs[0], 5, axis=1), seqs[1], seqs[0]]
    m = evaluate_mean_chroma(rolled, ["a", "b", "a"], per_query=True)
    assert m["per_query"]["r1"][0] == 1 and m["per_query"]["r1"][2] == 1


def test_chrompwr_keeps_frame_norm_and_sharpens():
    x = np.array([[1.0, 0.5] + [0.0] * 10, [0.0] * 12])
    y = chrompwr(x, 1.96)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1))
    assert y[0, 1] / y[0, 0] < 0.5


def test_ftm2d_is_exactly_invariant_to_circular_pitch_shift():
    seqs, _ = make_versions(works=1, per=1)
    a = ftm2d_features([seqs[0], np.roll(seqs[0], 7, axis=1)])
    np.testing.assert_allclose(a[0], a[1], atol=1e-5)


def test_ftm2d_short_sequence_is_tiled():
    rng = np.random.default_rng(3)
    f = ftm2d_features([rng.random((10, 12)), rng.random((1, 12))])
    assert f.shape == (2, 900) and np.isfinite(f).all()


def test_ftm2d_embedding_shape_and_fit_set():
    seqs, _ = make_versions(works=5, per=2)
    e = ftm2d_embeddings(seqs, n_components=4)
    assert e.shape == (10, 4) and e.dtype == np.float32
    e2 = ftm2d_embeddings(seqs[:3], n_components=4, fit_seqs=seqs)
    np.testing.assert_allclose(e2, e[:3], atol=1e-4)


@pytest.mark.parametrize("evaluate", [evaluate_mean_chroma, evaluate_ftm2d])
def test_baselines_beat_chance_and_shuffled_labels_do_not(evaluate):
    seqs, labels = make_versions()
    kw = {"n_components": 20, "hop": 4} if evaluate is evaluate_ftm2d else {}
    m = evaluate(seqs, labels, block=16, **kw)
    chance = 3 / 59
    assert m["n_queries"] == 60
    assert m["map"] > 4 * chance
    shuffled = np.random.default_rng(1).permutation(labels)
    r = evaluate(seqs, shuffled, **kw)
    assert r["map"] < m["map"] / 2


def test_bad_input_names_the_sequence():
    with pytest.raises(ValueError, match="sequence 1"):
        mean_chroma_embeddings([np.zeros((5, 12)), np.zeros((5, 11))])
    with pytest.raises(ValueError, match="sequence 0"):
        ftm2d_features([np.zeros((0, 12))])


def test_ftm2d_half_spectrum_equals_full_fft2():
    from coversearch.evaluate.baselines import _ftm_one, chrompwr

    x = np.random.default_rng(4).random((90, 12))
    for win in (75, 8):
        patches = np.lib.stride_tricks.sliding_window_view(chrompwr(x), win, axis=0)
        full = np.median(np.abs(np.fft.fft2(patches, axes=(1, 2))).reshape(len(patches), -1), axis=0)
        np.testing.assert_allclose(_ftm_one(x, win, 1.96, 1), full, rtol=1e-10, atol=1e-12)
