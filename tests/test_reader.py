"""The Da-TACOS reader on every real sample file, and on bad input."""

import numpy as np
import pytest

from coversearch.data.layout import find_performances
from coversearch.data.metadata import load_metadata
from coversearch.data.reader import load_chroma, load_key
from coversearch.errors import DataError
from tests.conftest import write_perf

FEATURES = {"hpcp": (15227, np.float32), "crema": (15226, np.float32), "cens": (15227, np.float32)}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_real_files_both_layouts(real_root, feature):
    entries = find_performances(real_root, feature)
    assert [(e.perf_id, e.work_id, e.subset, e.layout) for e in entries] == [
        ("P_547131", "W_163992", "coveranalysis", "per-feature")
    ]
    single = real_root / "da-tacos_coveranalysis_subset_single_files" / "W_163992" / "P_547131.h5"
    a = load_chroma(entries[0].path, feature)
    b = load_chroma(single, feature)
    t, _ = FEATURES[feature]
    assert a.frames.shape == (t, 12) and a.frames.dtype == np.float32
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.hop == 512 and a.work_id == "W_163992" and a.perf_id == "P_547131"
    assert np.isfinite(a.frames).all()


def test_real_crema_orientation_and_pitch(real_root):
    # the sample is in C major: crema (bin 0 = C) peaks at 0/4/7, HPCP (bin 0 = A) at 3/7/10
    crema = load_chroma(next(real_root.glob("*crema/*/*.h5")), "crema").frames.mean(0)
    hpcp = load_chroma(next(real_root.glob("*hpcp/*/*.h5")), "hpcp").frames.mean(0)
    assert set(np.argsort(crema)[-3:]) == {0, 4, 7}
    assert set(np.argsort(hpcp)[-3:]) == {3, 7, 10}


def test_single_files_only_layout(real_root):
    entries = find_performances(real_root / "da-tacos_coveranalysis_subset_single_files", "crema")
    assert entries[0].layout == "single-files"


def test_metadata_and_key(real_root):
    meta = load_metadata(real_root)
    assert meta["P_547131"]["work_title"] == "Trade Winds, Trade Winds"
    assert meta["P_547131"]["release_year"] == "1961"
    key = load_key(next(real_root.glob("*key/*/*.h5")))
    assert key[:2] == ("C", "major")


def test_nan_counted_and_zeroed(tmp_path):
    x = np.random.default_rng(0).random((50, 12)).astype(np.float32)
    x[3, 4] = np.nan
    x[7, 1] = np.inf
    p = write_perf(tmp_path / "P_1_hpcp.h5", "hpcp", x, "W_1", "P_1")
    c = load_chroma(p, "hpcp")
    assert c.n_nonfinite == 2 and c.frames[3, 4] == 0 and np.isfinite(c.frames).all()


def test_transposed_orientation_and_hop_attribute(tmp_path):
    x = np.random.default_rng(0).random((12, 80)).astype(np.float32)
    p = write_perf(tmp_path / "P_1_crema.h5", "crema", x, "W_1", "P_1", hop_length=np.int64(4096))
    c = load_chroma(p, "crema")
    assert c.frames.shape == (80, 12) and c.hop == 4096
    np.testing.assert_array_equal(c.frames, x.T)


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("missing", "file not found"),
        ("truncated", "corrupt or unreadable"),
        ("garbage", "corrupt or unreadable"),
        ("no_dataset", "no 'hpcp' dataset"),
        ("no_12", "no 12-bin axis"),
        ("empty", "empty sequence"),
    ],
)
def test_bad_files(tmp_path, real_root, case, pattern):
    p = tmp_path / "P_9_hpcp.h5"
    if case == "truncated":
        data = next(real_root.glob("*hpcp/*/*.h5")).read_bytes()
        p.write_bytes(data[: len(data) // 3])
    elif case == "garbage":
        p.write_bytes(b"not an hdf5 file at all" * 10)
    elif case == "no_dataset":
        write_perf(p, "mfcc_htk", np.zeros((13, 10), np.float32), "W_9", "P_9")
    elif case == "no_12":
        write_perf(p, "hpcp", np.zeros((40, 13), np.float32), "W_9", "P_9")
    elif case == "empty":
        write_perf(p, "hpcp", np.zeros((0, 12), np.float32), "W_9", "P_9")
    with pytest.raises(DataError, match=pattern) as e:
        load_chroma(p, "hpcp")
    assert "\n" not in str(e.value) and "P_9_hpcp.h5" in str(e.value)


def test_not_datacos_folder(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DataError, match="not a Da-TACOS folder"):
        find_performances(tmp_path, "hpcp")
    with pytest.raises(DataError, match="data folder not found"):
        find_performances(tmp_path / "nope", "hpcp")
