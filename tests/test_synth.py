"""Tests of the synthetic Da-TACOS generator: format against the real sample
files, value ranges, clique structure, determinism (seed; jobs=1 vs 2)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from coversearch.synth import generate
from coversearch.synth.profiles import get_profile, membership
from coversearch.errors import ConfigError

REAL = Path(__file__).resolve().parents[2] / "shared" / "datacos" / "real-sample"
if not REAL.is_dir():
    REAL = Path("/work/shared/datacos/real-sample")
REAL_SINGLE = REAL / "da-tacos_coveranalysis_subset_single_files" / "W_163992" / "P_547131.h5"
needs_real = pytest.mark.skipif(not REAL_SINGLE.exists(), reason="real Da-TACOS sample not available")
FIELDS = {"work_title", "work_artist", "perf_title", "perf_artist", "release_year", "work_id", "perf_id",
          "instrumental"}


def _attr_sig(obj) -> dict:
    """Attribute name -> (type class, string pad, charset, dataspace class) as stored."""
    out = {}
    for k in obj.attrs:
        aid = obj.attrs.get_id(k)
        t = aid.get_type()
        pad = t.get_strpad() if isinstance(t, h5py.h5t.TypeStringID) else None
        cset = t.get_cset() if isinstance(t, h5py.h5t.TypeStringID) else None
        out[k] = (type(t).__name__, pad, cset, aid.get_space().get_simple_extent_type())
    return out


def _ds_sig(ds) -> tuple:
    pl = ds.id.get_create_plist()
    filters = [pl.get_filter(i)[0] for i in range(pl.get_nfilters())]
    return ds.dtype, ds.compression, ds.compression_opts, ds.shuffle, filters, ds.fillvalue


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny demo-profile set (W_22 + 1 more work + 1 singleton), coarse hop, short songs."""
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, profile="demo", seed=3, hop=2048, n_works=3, max_seconds=20, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def tiny512(tmp_path_factory):
    """One short performance set at the real hop 512, single-files layout."""
    out = tmp_path_factory.mktemp("synth512")
    summary = generate(out, profile="benchmark", seed=1, hop=512, n_works=2, max_seconds=12,
                       layout="single-files", progress=False)
    return out, summary


def test_layout_and_membership(tiny):
    out, summary = tiny
    assert summary["n_works"] == 3 and summary["n_performances"] == 13 + 13 + 1
    files = sorted(out.glob("da-tacos_benchmark_subset_hpcp/W_22_hpcp/P_*_hpcp.h5"))
    real_ids = {p for w, ps in membership(get_profile("benchmark"), 0) if w == "W_22" for p in ps}
    assert {f.name[:-len("_hpcp.h5")] for f in files} == real_ids
    for feat in ("hpcp", "crema", "cens"):
        assert len(list(out.glob(f"da-tacos_benchmark_subset_{feat}/W_*_{feat}/P_*_{feat}.h5"))) == 27
    assert len(list(out.glob("da-tacos_benchmark_subset_single_files/W_*/P_*.h5"))) == 27


def test_metadata_like_real(tiny):
    out, _ = tiny
    meta = json.loads((out / "da-tacos_metadata" / "da-tacos_benchmark_subset_metadata.json").read_text())
    real = json.loads((REAL / "da-tacos_metadata" / "da-tacos_coveranalysis_subset_metadata.json").read_text()) \
        if REAL.is_dir() else None
    assert set(meta) == {"W_22", *[w for w in meta]} and "W_22" in meta
    for w, perfs in meta.items():
        for p, rec in perfs.items():
            assert FIELDS <= set(rec)
            if real:
                assert set(rec) == set(real["W_163992"]["P_547131"])
            assert rec["work_id"] == w and rec["perf_id"] == p
            assert rec["instrumental"] in ("Yes", "No")
            assert all(isinstance(v, str) for k, v in rec.items() if k != "mb_performances")


@needs_real
def test_h5_structure_matches_real(tiny):
    out, _ = tiny
    real = h5py.File(REAL_SINGLE, "r")
    real_root = _attr_sig(real)
    real_ds = {n: (_attr_sig(real[n]), _ds_sig(real[n])) for n in ("hpcp", "crema", "chroma_cens")}
    real_key = _attr_sig(real["key_extractor"])
    paths = sorted(out.rglob("*.h5"))
    assert len(paths) == 27 * 4
    for path in paths:
        with h5py.File(path, "r") as f:
            sig = _attr_sig(f)
            assert sig.pop("hop_length") == ("TypeIntegerID", None, None, h5py.h5s.SCALAR)
            assert sig == real_root
            for k in ("CLASS", "DEEPDISH_IO_VERSION", "PYTABLES_FORMAT_VERSION", "VERSION"):
                assert f.attrs[k] == real.attrs[k]
            assert f.attrs["hop_length"] == 2048
            assert isinstance(f.attrs["label"], bytes) and f.attrs["label"].decode() == path.parent.name.split("_")[0] + "_" + path.parent.name.split("_")[1]
            assert f.attrs["track_id"].decode() == path.stem.split("_")[0] + "_" + path.stem.split("_")[1]
            names = [n for n in f if n != "key_extractor"]
            assert names
            for n in names:
                assert (_attr_sig(f[n]), _ds_sig(f[n])) == real_ds[n]
                assert f[n].attrs["CLASS"] == b"CARRAY" and f[n].attrs["VERSION"] == b"1.1"
            if "single_files" in str(path):
                assert sorted(names) == ["chroma_cens", "crema", "hpcp"]
                assert _attr_sig(f["key_extractor"]) == real_key
                assert f["key_extractor"].attrs["scale"] in (b"major", b"minor")


@needs_real
def test_values_like_real(tiny):
    out, _ = tiny
    for path in sorted(out.glob("da-tacos_benchmark_subset_single_files/W_*/P_*.h5")):
        with h5py.File(path, "r") as f:
            hp, cr, ce = f["hpcp"][()], f["crema"][()], f["chroma_cens"][()]
        T = hp.shape[0]
        assert hp.shape == (T, 12) and hp.dtype == np.float32
        assert cr.shape == (T - 1, 12) and cr.dtype == np.float32  # benchmark subset: (T, 12)
        assert ce.shape == (T, 12) and ce.dtype == np.float64
        assert hp.min() >= 0 and hp.max() <= 1
        loud = hp.max(axis=1) > 0
        assert np.allclose(hp[loud].max(axis=1), 1.0, atol=1e-5)  # max-normalised per frame
        assert (~loud).any()  # silent lead/tail frames are all zero, as real
        assert cr.min() > 0 and cr.max() < 1
        n = np.linalg.norm(ce, axis=1)
        assert np.allclose(n[n > 0], 1.0) and ce.min() >= 0
        assert np.isfinite(hp).all() and np.isfinite(ce).all()


@needs_real
def test_real_hop_512_frame_rate_and_crema_steps(tiny512):
    out, summary = tiny512
    paths = sorted(out.glob("da-tacos_benchmark_subset_single_files/W_*/P_*.h5"))
    assert len(paths) == summary["n_performances"] == 14
    with h5py.File(paths[0], "r") as f:
        assert "hop_length" not in f.attrs  # real files carry none: 512
        hp, cr = f["hpcp"][()], f["crema"][()]
        assert f["hpcp"].chunks == (min(hp.shape[0], 1365), 12)
    # CREMA's native hop is 4096: values change at most every 8 frames
    changes = np.nonzero(np.any(np.diff(cr, axis=0) != 0, axis=1))[0] + 1
    assert np.all(changes % 8 == 0)
    rate = hp.shape[0] / (summary["audio_hours"] * 3600 / 14)
    assert 70 < rate < 90  # ~86.13 frames/s, averaged over the set


def test_coveranalysis_crema_orientation_and_ids(tmp_path):
    s = generate(tmp_path, profile="train", seed=0, hop=4096, n_works=2, max_seconds=15, progress=False,
                 layout="per-feature", features=("crema",))
    files = sorted(tmp_path.glob("da-tacos_coveranalysis_subset_crema/W_*_crema/P_*_crema.h5"))
    assert len(files) == s["n_performances"] >= 4
    for p in files:
        assert int(p.parent.name.split("_")[1]) >= 5_000_000
        with h5py.File(p, "r") as f:
            T = f["crema"].shape[1]
            assert f["crema"].shape[0] == 12  # (12, T) as real
            # PyTables' rule: ~64 KiB chunks along the first axis ((1, T) at real lengths)
            assert f["crema"].chunks == (min(12, 16384 // T), T)


def test_deterministic_for_seed_and_jobs(tmp_path):
    kw = dict(profile="train", seed=11, hop=4096, n_works=3, max_seconds=10, progress=False, layout="single-files")
    generate(tmp_path / "a", jobs=1, **kw)
    generate(tmp_path / "b", jobs=2, **kw)
    fa = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.h5"))
    fb = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.h5"))
    assert fa == fb and fa
    for rel in fa:
        with h5py.File(tmp_path / "a" / rel, "r") as x, h5py.File(tmp_path / "b" / rel, "r") as y:
            for n in ("hpcp", "crema", "chroma_cens"):
                np.testing.assert_array_equal(x[n][()], y[n][()])
            assert dict(x["key_extractor"].attrs) == dict(y["key_extractor"].attrs)
    meta = "da-tacos_metadata/da-tacos_coveranalysis_subset_metadata.json"
    assert (tmp_path / "a" / meta).read_bytes() == (tmp_path / "b" / meta).read_bytes()


def test_bad_options_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="profile"):
        generate(tmp_path, profile="nope")
    with pytest.raises(ConfigError, match="hop"):
        generate(tmp_path, hop=1001)
    with pytest.raises(ConfigError, match="variation"):
        generate(tmp_path, variation="extreme")
    with pytest.raises(ConfigError, match="feature"):
        generate(tmp_path, features=("mfcc",))


def test_readable_by_project_reader_in_both_layouts(tiny):
    from coversearch.data.layout import find_performances
    from coversearch.data.reader import load_chroma, load_key

    out, summary = tiny
    for feat in ("hpcp", "crema", "cens"):
        entries = find_performances(out, feat)
        assert len(entries) == summary["n_performances"]
        assert {e.layout for e in entries} == {"per-feature"}  # per-feature wins when both exist
        single = [e for e in find_performances(out / "da-tacos_benchmark_subset_single_files", feat)]
        assert {e.layout for e in single} == {"single-files"} and len(single) == len(entries)
        for e, s in zip(entries[:5], single[:5]):
            a, b = load_chroma(e.path, feat), load_chroma(s.path, feat)
            assert a.hop == b.hop == 2048 and a.frames.shape[1] == 12
            np.testing.assert_array_equal(a.frames, b.frames)
            assert (a.work_id, a.perf_id) == (e.work_id, e.perf_id)
    key = load_key(single[0].path)
    assert key[1] in ("major", "minor") and 0 < key[2] < 1


def test_both_layout_single_files_equal_single_files_layout(tmp_path):
    kw = dict(profile="demo", seed=5, hop=4096, n_works=1, max_seconds=8, progress=False)
    generate(tmp_path / "both", layout="both", **kw)
    generate(tmp_path / "single", layout="single-files", **kw)
    files = sorted((tmp_path / "single").rglob("*.h5"))
    assert len(files) == 13
    for f in files:
        g = tmp_path / "both" / f.relative_to(tmp_path / "single")
        with h5py.File(f, "r") as a, h5py.File(g, "r") as b:
            assert sorted(a) == sorted(b)
            for n in ("hpcp", "crema", "chroma_cens"):
                np.testing.assert_array_equal(a[n][()], b[n][()])
                assert _ds_sig(a[n]) == _ds_sig(b[n]) and a[n].chunks == b[n].chunks
            assert _attr_sig(a) == _attr_sig(b)


def test_rerun_resumes_and_other_options_refused(tmp_path):
    kw = dict(profile="train", seed=2, hop=4096, n_works=2, max_seconds=8, progress=False, layout="per-feature")
    first = generate(tmp_path, **kw)
    meta = next((tmp_path / "da-tacos_metadata").glob("*.json")).read_bytes()
    victim = sorted(tmp_path.rglob("*_hpcp.h5"))[0]
    victim.unlink()  # as if interrupted before this file
    again = generate(tmp_path, **kw)
    assert again["resumed"] == first["n_performances"] - 1 and victim.is_file()
    assert next((tmp_path / "da-tacos_metadata").glob("*.json")).read_bytes() == meta
    with pytest.raises(ConfigError, match="other options"):
        generate(tmp_path, **{**kw, "seed": 3})


def test_bin_conventions_hpcp_a_cens_c():
    """HPCP bin 0 is A (reference 440 Hz), CENS/crema bin 0 is C, as in the real files."""
    from coversearch.synth.music import Performance
    from coversearch.synth.render import SR, Extractor, cens, crema_like

    t = np.arange(SR * 2) / SR
    tone = (np.sin(2 * np.pi * 440.0 * t) + 0.5 * np.sin(2 * np.pi * 880.0 * t)).astype(np.float32)
    hp, ch = Extractor().features(tone, 4096, True, True)
    assert np.bincount(hp[2:-2].argmax(axis=1)).argmax() == 0  # A
    assert cens(ch, 4096)[2:-2].mean(axis=0).argmax() == 9  # A in a C-based chroma
    perf = Performance(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int64), [], [],
                       [(float(i), i + 1.0, (0, 4, 7)) for i in range(20)], 20.0, ("C", "major", 0.9),
                       "faithful", False)
    cr = crema_like(perf, 0.0, 200, 4096, np.random.default_rng(0))
    # C major chords -> C, E, G (a recogniser confuses a few of them, as CREMA does)
    assert set(np.argsort(cr.mean(axis=0))[-3:]) == {0, 4, 7}
