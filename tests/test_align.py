"""Tests of the Serra09 alignment reference (coversearch.align)."""

import importlib

import numpy as np
import pytest

from coversearch.align import (
    AlignConfig,
    cross_recurrence,
    delay_embed,
    oti,
    qmax,
    qmax_score,
    qmax_scores_one_to_many,
    to_alignment_rate,
)
from coversearch.align import _kernels
from coversearch.errors import ConfigError, DataError

qmax_module = importlib.import_module("coversearch.align.qmax")


def _song(rng, n_chords=40, frames_per_chord=(3, 8), noise=0.15):
    """A (T, 12) float32 chroma sequence: held random chords plus noise, max-normalised."""
    frames = []
    for _ in range(n_chords):
        chord = np.zeros(12, np.float32)
        chord[rng.choice(12, size=3, replace=False)] = rng.uniform(0.5, 1.0, 3)
        hold = int(rng.integers(*frames_per_chord))
        frames.append(np.tile(chord, (hold, 1)))
    x = np.concatenate(frames) + noise * rng.random((sum(len(f) for f in frames), 12))
    return (x / x.max(axis=1, keepdims=True)).astype(np.float32)


def _stretch(seq, factor):
    """Linear-interpolation time stretch of a (T, 12) sequence by ``factor``."""
    t = seq.shape[0]
    pos = np.linspace(0, t - 1, int(round(t * factor)))
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo)[:, None]
    return ((1 - w) * seq[lo] + w * seq[hi]).astype(np.float32)


@pytest.mark.parametrize("shift", [0, 1, 5, 11])
def test_oti_recovers_circular_shift(shift):
    rng = np.random.default_rng(0)
    a = _song(rng)
    b = np.roll(a, -shift, axis=1)  # b is a transposed down by `shift` bins
    assert oti(a, b) == shift
    assert np.array_equal(np.roll(b, oti(a, b), axis=1), a)


def test_transposed_copy_scores_like_itself_and_near_the_max():
    rng = np.random.default_rng(1)
    a = _song(rng)
    cfg = AlignConfig(norm="min_len")
    self_score = qmax_score(a, a, cfg)
    for shift in (3, 7):
        assert qmax_score(a, np.roll(a, shift, axis=1), cfg) == pytest.approx(self_score)
    # a perfect diagonal aligns every stacked frame but the two DP borders
    t = to_alignment_rate(a).shape[0]
    assert self_score >= 0.9 * (t - cfg.m * cfg.tau - 2) / t


def test_unrelated_scores_low_and_a_stretched_cropped_cover_scores_higher():
    rng = np.random.default_rng(2)
    a = _song(rng)
    cover = _stretch(a, 1.2)[20:-15]  # slower, intro and outro cut
    cover = np.roll(cover + 0.1 * rng.random(cover.shape).astype(np.float32), 4, axis=1)
    others = [_song(rng) for _ in range(5)]
    s_cover = qmax_score(a, cover)
    s_others = [qmax_score(a, o) for o in others]
    assert s_cover > 2 * max(s_others)
    assert max(s_others) < 0.5 * qmax_score(a, a)


@pytest.mark.parametrize("seed", range(6))
def test_fast_dp_equals_reference(seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    rp = (rng.random((m, n)) < rng.uniform(0.05, 0.6)).astype(np.uint8)
    # plant a slightly warped diagonal so long paths and disruptions both occur
    for i in range(min(m, n)):
        if rng.random() < 0.8:
            rp[i, min(n - 1, i + i // 5)] = 1
    gamma_o, gamma_e = [(0.5, 0.5), (5.0, 0.5), (1.0, 0.2)][seed % 3]
    expected = _kernels.qmax_reference(rp, gamma_o, gamma_e)
    assert _kernels.qmax_numpy(rp, gamma_o, gamma_e) == pytest.approx(expected)
    assert qmax(rp, gamma_o, gamma_e) == pytest.approx(expected)  # numba when installed


def test_dp_known_small_case():
    rp = np.eye(6, dtype=np.uint8)
    # cells (2,2)..(5,5) extend a diagonal: 1, 2, 3, 4
    assert _kernels.qmax_reference(rp, 0.5, 0.5) == 4.0
    assert qmax(rp) == 4.0
    rp[3, 3] = 0  # one disruption: 1, then 1 - 0.5, then +1, +1
    assert qmax(rp) == pytest.approx(2.5)


def test_matches_essentia():
    es = pytest.importorskip("essentia.standard")
    rng = np.random.default_rng(3)
    cfg = AlignConfig(downsample=1, norm="none")
    checked = 0
    for trial in range(8):
        a = _song(rng, n_chords=int(rng.integers(10, 30)))
        b = _song(rng, n_chords=int(rng.integers(10, 30))) if trial % 2 else np.roll(_stretch(a, 0.9), 2, axis=1)
        # essentia's percentile returns 0 when (n - 1) * kappa is an integer (its
        # interpolation weights both vanish), emptying the plot; we do not copy that
        n_rows, n_cols = a.shape[0] - cfg.m, b.shape[0] - cfg.m
        if any(abs(x - round(x)) < 1e-9 for x in ((n_rows - 1) * cfg.kappa, (n_cols - 1) * cfg.kappa)):
            continue
        csm = np.array(es.ChromaCrossSimilarity(frameStackSize=9, frameStackStride=1, binarizePercentile=0.095, oti=True)(a, b))
        k = oti(a, b)
        ours = cross_recurrence(delay_embed(a), delay_embed(np.roll(b, k, axis=1)), cfg.kappa)
        assert np.array_equal(ours, csm.astype(np.uint8))
        _, expected = es.CoverSongSimilarity(alignmentType="serra09", distanceType="symmetric")(csm)
        assert qmax_score(a, b, cfg) == pytest.approx(expected)
        checked += 1
    assert checked >= 6


def test_score_normalisations():
    rng = np.random.default_rng(4)
    a, b = _song(rng, 30), _song(rng, 50)
    raw = qmax_score(a, b, AlignConfig(norm="none"))
    ta, tb = to_alignment_rate(a).shape[0], to_alignment_rate(b).shape[0]
    assert qmax_score(a, b) == pytest.approx(raw / np.sqrt(tb))  # acoss default
    assert qmax_score(a, b, AlignConfig(norm="sqrt_prod")) == pytest.approx(raw / (ta * tb) ** 0.25)
    assert qmax_score(a, b, AlignConfig(norm="min_len")) == pytest.approx(raw / min(ta, tb))


def test_one_to_many_matches_pairwise_and_threads_agree():
    rng = np.random.default_rng(5)
    q = _song(rng)
    cands = [_song(rng, int(rng.integers(10, 50))) for _ in range(6)] + [np.roll(q, 3, axis=1)]
    expected = np.array([qmax_score(q, c) for c in cands])
    np.testing.assert_allclose(qmax_scores_one_to_many(q, cands, config=AlignConfig(), jobs=1), expected)
    np.testing.assert_allclose(qmax_scores_one_to_many(q, cands, config=AlignConfig(), jobs=2), expected)
    assert qmax_scores_one_to_many(q, [], jobs=2).shape == (0,)


def test_to_alignment_rate_pools_and_keeps_partial_block():
    x = np.arange(5 * 12, dtype=np.float32).reshape(5, 12)
    y = to_alignment_rate(x, 2)
    assert y.shape == (3, 12) and y.dtype == np.float32
    np.testing.assert_allclose(y[0], x[:2].mean(0))
    np.testing.assert_allclose(y[2], x[4])
    assert to_alignment_rate(x, 1) is not None and to_alignment_rate(x, 1).shape == (5, 12)


def test_delay_embed_layout():
    x = np.arange(20 * 12, dtype=np.float32).reshape(20, 12)
    e = delay_embed(x, m=3, tau=2)
    assert e.shape == (20 - 6, 36)
    np.testing.assert_array_equal(e[0], np.concatenate([x[0], x[2], x[4]]))


def test_short_inputs_score_zero_and_bad_inputs_raise():
    rng = np.random.default_rng(6)
    a = _song(rng)
    assert qmax_score(a, a[:20]) == 0.0  # 10 alignment frames < m * tau + 3
    with pytest.raises(DataError):
        qmax_score(a, a[:, :11])
    with pytest.raises(DataError):
        qmax_score(np.zeros((0, 12), np.float32), a)
    with pytest.raises(ConfigError):
        AlignConfig(kappa=1.5)
    with pytest.raises(ConfigError):
        AlignConfig(norm="max")
    with pytest.raises(ConfigError):
        qmax_scores_one_to_many(a, [a], jobs=0)


@pytest.mark.parametrize("m,tau", [(9, 1), (3, 2), (1, 1)])
def test_stacked_distances_from_frames_equal_distances_of_stacks(m, tau):
    rng = np.random.default_rng(7)
    a = rng.random((40, 12))
    b = rng.random((33, 12))
    expected = qmax_module._distances(delay_embed(a, m, tau), delay_embed(b, m, tau))
    if m > 1:
        np.testing.assert_allclose(_kernels.stacked_distances_numpy(a, b, m, tau), expected, atol=1e-5)
    np.testing.assert_allclose(qmax_module._stacked_distances(a, b, m, tau), expected, atol=1e-5)


@pytest.mark.parametrize("cfg", [AlignConfig(norm="none"), AlignConfig(norm="none", downsample=4, m=5),
                                 AlignConfig(norm="none", m=1, oti=False), AlignConfig(norm="none", kappa=0.2, tau=2)])
def test_batch_kernel_equals_pairwise_reference(cfg):
    """The cascade's one-call batch computes exactly qmax_score's raw Qmax for every pair."""
    from coversearch.align.batch import qmax_batch

    rng = np.random.default_rng(11)
    q = rng.random((120, 12)).astype(np.float32)
    cands = [rng.random((int(t), 12)).astype(np.float32) for t in rng.integers(8, 200, 12)]
    cands += [np.roll(q[10:], 4, axis=1), q[:20]]
    raw, t_q, t_c = qmax_batch(q, cands, config=cfg, jobs=2)
    ref = [qmax_score(q, c, cfg) for c in cands]
    np.testing.assert_array_equal(raw, ref)
    assert t_q == -(-120 // cfg.downsample)
    assert t_c.tolist() == [-(-len(c) // cfg.downsample) for c in cands]
    if cfg.oti and cfg.m > 1:
        assert raw[-2] == raw.max()  # the rotated crop of the query aligns best
