"""Resampling to the model rate and the incremental prepared cache."""

import os

import numpy as np
import pytest

from coversearch.errors import DataError
from coversearch.features.cache import PreparedCache, build_cache
from coversearch.features.prepare import normalise, prepare, resample
from tests.conftest import write_perf


def test_resample_integer_and_fractional_agree_on_constant_blocks():
    rng = np.random.default_rng(0)
    x = np.repeat(rng.random((10, 12)).astype(np.float32), 20, axis=0)  # 10 blocks of 20 real frames
    np.testing.assert_allclose(resample(x, 512), x[::20], rtol=1e-6)
    y = np.repeat(x[::20], 5, axis=0)  # the same signal at hop 2048
    np.testing.assert_allclose(resample(y, 2048), x[::20], rtol=1e-6)
    z = np.repeat(x[::20], 2, axis=0)  # hop 5120
    np.testing.assert_allclose(resample(z, 5120), x[::20], rtol=1e-6)


def test_resample_fractional_ratio_preserves_mean():
    x = np.random.default_rng(1).random((1000, 12)).astype(np.float32)
    y = resample(x, 4096)  # ratio 2.5
    assert y.shape == (400, 12)
    np.testing.assert_allclose(y.mean(0), x.mean(0), rtol=1e-4)


def test_prepare_real_sample_length(real_root):
    from coversearch.data.reader import load_chroma

    c = load_chroma(next(real_root.glob("*hpcp/*/*.h5")), "hpcp")
    p = prepare(c.frames, c.hop)
    assert p.shape == (762, 12)  # ceil(15227 / 20)
    assert p.max() <= 1 and p.min() >= 0


def test_normalise_keeps_silence_zero():
    x = np.zeros((3, 12), np.float32)
    x[1, 2] = 4.0
    n = normalise(x)
    assert n[0].sum() == 0 and n[1, 2] == 1.0


def test_prepare_rejects_bad_shape():
    with pytest.raises(DataError):
        prepare(np.zeros((0, 12), np.float32), 512)


def test_cache_build_reuse_and_refresh(tiny_root, tmp_path):
    path = tmp_path / "c.arrow"
    cache, rep = build_cache(tiny_root, "hpcp", cache_path=path, jobs=1, progress=False)
    assert len(cache) == 18 and rep.n_read == 18 and rep.n_reused == 0
    assert cache.sequence("P_1").shape == (80, 12)  # 400 frames at hop 2048 -> 80 at 10240
    _, rep2 = build_cache(tiny_root, "hpcp", cache_path=path, jobs=1, progress=False)
    assert rep2.n_read == 0 and rep2.n_reused == 18
    # change one file: only it is re-read
    f = next(tiny_root.rglob("P_2_hpcp.h5"))
    write_perf(f, "hpcp", np.ones((100, 12), np.float32), "W_1", "P_2", hop_length=np.int64(2048))
    os.utime(f, ns=(1, 1))
    cache3, rep3 = build_cache(tiny_root, "hpcp", cache_path=path, jobs=1, progress=False)
    assert rep3.n_read == 1 and rep3.n_reused == 17
    assert cache3.sequence("P_2").shape == (20, 12)


def test_cache_parallel_equals_serial(tiny_root, tmp_path):
    a, _ = build_cache(tiny_root, "hpcp", cache_path=tmp_path / "a.arrow", jobs=1, progress=False)
    b, _ = build_cache(tiny_root, "hpcp", cache_path=tmp_path / "b.arrow", jobs=2, progress=False)
    assert a.perf_ids == b.perf_ids
    for i in range(len(a)):
        np.testing.assert_array_equal(a.sequence(i), b.sequence(i))


def test_cache_bad_file_stops_or_skips(tiny_root, tmp_path):
    bad = next(tiny_root.rglob("P_3_hpcp.h5"))
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(DataError, match="P_3_hpcp.h5.*--skip-bad"):
        build_cache(tiny_root, "hpcp", cache_path=tmp_path / "c.arrow", jobs=1, progress=False)
    assert not (tmp_path / "c.arrow").exists()
    cache, rep = build_cache(tiny_root, "hpcp", cache_path=tmp_path / "c.arrow", jobs=1, skip_bad=True, progress=False)
    assert len(cache) == 17 and len(rep.bad) == 1 and "P_3_hpcp.h5" in rep.bad[0][0]


def test_corrupt_cache_file_is_rebuilt(tiny_root, tmp_path):
    path = tmp_path / "c.arrow"
    path.write_bytes(b"junk")
    with pytest.raises(DataError, match="corrupt prepared cache"):
        PreparedCache(path)
    cache, rep = build_cache(tiny_root, "hpcp", cache_path=path, jobs=1, progress=False)
    assert len(cache) == 18 and rep.n_read == 18
