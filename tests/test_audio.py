"""Audio input (coversearch.audio, `extract`, `build-index --audio`, `query --audio`),
on the generator's own audio written as wav, flac and mp3 (short versions)."""

from __future__ import annotations

import json
import os
import wave

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from coversearch.cli import main
from coversearch.errors import ConfigError, DataError

# a variation in which versions stay close (no reharmonisation or structure
# edits, little noise): an easy pair for "query finds its sibling first"
EASY = dict(reharm_range=(0.0, 0.0), hard_melody_share=0.0, hard_structure_share=0.0, drop_prob=0.0, repeat_prob=0.0,
            swap_prob=0.0, new_intro_prob=0.0, new_outro_prob=0.0, excerpt_prob=0.0, snr_db=(30.0, 40.0),
            reverb_prob=0.0, drums_prob=0.0, fills_prob=0.0, tempo_range=(0.95, 1.05), melody_change_prob=0.0)
SECONDS = 20


def _write(path, audio, sr, fmt=None):
    from coversearch.audio.decode import essentia_standard

    es = essentia_standard()
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or path.suffix[1:]
    if fmt == "mp3" and sr != 44100:  # an mp3 at 11,025 Hz is MPEG-2.5 with a ~5 kHz low-pass: not music as users have it
        audio = es.Resample(inputSampleRate=sr, outputSampleRate=44100, quality=0)(audio)
        sr = 44100
    es.MonoWriter(filename=str(path), format=fmt, sampleRate=sr, bitrate=192)(np.asarray(audio, np.float32))
    return path


@pytest.fixture(scope="session")
def music(tmp_path_factory):
    """Generated recordings: W_22 v0 (mp3), W_18 v0 (wav), W_26 v0 (flac), W_92 (wav) in
    ``music/``; W_22 v1 (wav, the easy sibling) outside it, as the query."""
    from coversearch.synth.config import variation_config
    from coversearch.synth.generate import performance_audio

    easy = variation_config("standard", **EASY)
    base = tmp_path_factory.mktemp("audio")
    files = {}
    for name, work, version, fmt in [("W_22_v0", "W_22", 0, "mp3"), ("W_18_v0", "W_18", 0, "wav"),
                                     ("W_26_v0", "W_26", 0, "flac"), ("W_92_v0", "W_92", 0, "wav")]:
        a, sr = performance_audio(work, version, max_seconds=SECONDS, variation=easy)
        files[name] = _write(base / "music" / f"{name}.{fmt}", a, sr)
    a, sr = performance_audio("W_22", 1, max_seconds=SECONDS, variation=easy)
    files["W_22_v1"] = _write(base / "queries" / "W_22_v1.wav", a, sr)
    return base, files


def _one_line_error(r, *needles, code=2):
    assert r.exit_code == code, (r.exit_code, r.output)
    err = [ln for ln in r.output.strip().splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in err[0], err[0]


# ---------------------------------------------------------------- extractor
def test_hpcp_is_the_datacos_chain():
    """The vectorised extractor equals the Da-TACOS chain as acoss wrote it, frame by frame in essentia."""
    from coversearch.audio.hpcp import HpcpExtractor, reference_hpcp

    rng = np.random.default_rng(0)
    sr, n = 44100, 44100 * 3 + 777  # not a multiple of the hop: frame counts must agree too
    t = np.arange(n) / sr
    x = (0.3 * np.sin(2 * np.pi * 261.6 * t) + 0.2 * np.sin(2 * np.pi * 392.0 * t)
         + 0.1 * np.sin(2 * np.pi * 7000 * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
    x[: sr // 2] = 0  # digital silence: all-zero frames, as in the real files
    ours, ref = HpcpExtractor().hpcp(x), reference_hpcp(x)
    assert ours.shape == ref.shape == (-(-n // 512) + 1, 12)
    np.testing.assert_allclose(ours, ref, atol=5e-4)
    assert not ours[:10].any()
    assert np.bincount(ours[60:-5].argmax(axis=1)).argmax() == 3  # C, with bin 0 = A


def test_generator_uses_the_shared_extractor():
    from coversearch.audio.hpcp import HpcpExtractor
    from coversearch.synth.render import SR, Extractor

    a = np.random.default_rng(1).standard_normal(SR * 2).astype(np.float32) * 0.1
    hp, _ = Extractor().features(a, 512, True, False)
    np.testing.assert_array_equal(hp, HpcpExtractor(SR).hpcp(a, 512, n_frames=a.size // 128 + 1))


def test_min_seconds_covers_the_encoder_and_the_rerank():
    from coversearch.align.qmax import AlignConfig
    from coversearch.audio.decode import MIN_SECONDS
    from coversearch.config import PREPARED_HOP, SAMPLE_RATE
    from coversearch.model.config import EncoderConfig

    frame = PREPARED_HOP / SAMPLE_RATE
    q = AlignConfig()
    assert MIN_SECONDS >= EncoderConfig().kernel * frame
    assert MIN_SECONDS >= (q.m * q.tau + 1) * q.downsample * frame


def test_consistency_with_the_generators_own_h5(tmp_path):
    """The default (fast) generator's audio of a performance, as wav and as mp3, through
    `extract`, against the HPCP the generator wrote for it.

    Not equal within float tolerance, and it cannot be: the default generator
    analyses its audio at 11,025 Hz (its documented speed deviation; equality is
    ``analysis="essentia"``, tested below) and extract at
    44.1 kHz as Da-TACOS did, and 16-bit quantisation alone moves whitened HPCP
    frames by up to ~0.2. Measured here (seed 0, the first demo work W_22 v0): wav: frame
    correlation 0.99942 (12 s) / 0.99992 (20 s), mean |diff| 7.9e-4 / 4.1e-4,
    embedding cosine distance 1e-5 / < 1e-5; mp3 (44.1 kHz, 192 kbps, 20 s):
    0.9989, 8.0e-4, 6e-5. The thresholds below leave about a 2x margin
    (``benchmarks/bench_audio.py`` measures the same on a whole song).
    """
    from coversearch.audio.extract import extract_file
    from coversearch.features.prepare import prepare
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.synth import generate
    from coversearch.synth.generate import performance_audio

    root = tmp_path / "gen"
    generate(root, profile="demo", seed=0, n_works=1, max_seconds=12, features=("hpcp",), hop=512,
             layout="per-feature", progress=False)
    meta = json.loads(next((root / "da-tacos_metadata").glob("*.json")).read_text())
    work = next(iter(meta))
    pid = next(iter(meta[work]))
    with h5py.File(root / f"da-tacos_benchmark_subset_hpcp/{work}_hpcp/{pid}_hpcp.h5") as h:
        ref = h["hpcp"][:]
    audio, sr = performance_audio(work, 0, max_seconds=12)
    net, _ = load_checkpoint(None)
    e_ref = embed_sequences(net, [prepare(ref, 512)])[0]
    # frame counts: essentia's ceil(N / 512) + 1 vs the generator's N // 512 + 1; an
    # mp3 is padded to whole 1,152-sample MPEG frames (up to 3 more frames)
    for fmt, extra, min_corr, max_mean, max_dist in [("wav", 1, 0.999, 2e-3, 1e-3), ("mp3", 4, 0.995, 4e-3, 3e-3)]:
        got = extract_file(_write(tmp_path / f"perf.{fmt}", audio, sr))["hpcp"]
        assert 0 <= len(got) - len(ref) <= extra, (fmt, got.shape, ref.shape)
        n = min(len(got), len(ref))
        corr = np.corrcoef(got[:n].ravel(), ref[:n].ravel())[0, 1]
        mean = float(np.abs(got[:n] - ref[:n]).mean())
        dist = 1 - float(embed_sequences(net, [prepare(got, 512)])[0] @ e_ref)
        print(f"{fmt}: frames {got.shape[0]} vs {ref.shape[0]}, correlation {corr:.5f}, mean |diff| {mean:.2e}, "
              f"embedding cosine distance {dist:.5f}")
        assert corr >= min_corr and mean <= max_mean and dist <= max_dist, (fmt, corr, mean, dist)


def test_consistency_essentia_analysis_equals_extract(tmp_path):
    """``generate(analysis="essentia")``: the h5 it writes equal what `extract` gives for
    ``performance_audio(..., analysis="essentia")``, written losslessly.

    Measured here (seed 0, the first demo work's v0, 12 s, 1,224 frames): float32 wav:
    max |diff| 0 (bit-identical: FFmpeg decodes pcm_f32le exactly, and both sides
    run ``extract_array`` on the same samples); flac 24-bit: max 7.7e-5, mean
    1.2e-7; mp3 (192 kbps): correlation 0.9988, mean |diff| 6.7e-4 (max 0.82 on
    one frame), 2 more frames (MPEG padding), embedding cosine distance 2e-5.
    The bounds below: float tolerance for wav; about 2x margin for flac and mp3.
    """
    sf = pytest.importorskip("soundfile")  # float and 24-bit files; installed with librosa (test extra)
    from coversearch.audio.extract import extract_file
    from coversearch.features.prepare import prepare
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences
    from coversearch.synth import generate
    from coversearch.synth.generate import performance_audio

    root = tmp_path / "gen"
    s = generate(root, profile="demo", seed=0, n_works=1, max_seconds=12, features=("hpcp",), hop=512,
                 layout="per-feature", progress=False, analysis="essentia")
    assert s["analysis"] == "essentia"
    meta = json.loads(next((root / "da-tacos_metadata").glob("*.json")).read_text())
    work = next(iter(meta))
    pid = next(iter(meta[work]))
    with h5py.File(root / f"da-tacos_benchmark_subset_hpcp/{work}_hpcp/{pid}_hpcp.h5") as h:
        ref = h["hpcp"][:]
    audio, sr = performance_audio(work, 0, max_seconds=12, analysis="essentia")
    assert sr == 44100 and audio.dtype == np.float32
    assert len(ref) == -(-audio.size // 512) + 1  # essentia's frame count, as extract writes

    sf.write(str(tmp_path / "perf.wav"), audio, sr, subtype="FLOAT")
    got = extract_file(tmp_path / "perf.wav")["hpcp"]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)

    net, _ = load_checkpoint(None)
    e_ref = embed_sequences(net, [prepare(ref, 512)])[0]
    sf.write(str(tmp_path / "perf.flac"), audio, sr, subtype="PCM_24")
    for path, extra, max_mean, min_corr, max_dist in [(tmp_path / "perf.flac", 0, 1e-6, 0.99999, 1e-4),
                                                      (_write(tmp_path / "perf.mp3", audio, sr), 3, 2e-3, 0.995, 1e-3)]:
        got = extract_file(path)["hpcp"]
        assert 0 <= len(got) - len(ref) <= extra, (path.name, got.shape, ref.shape)
        n = len(ref)
        corr = np.corrcoef(got[:n].ravel(), ref.ravel())[0, 1]
        mean = float(np.abs(got[:n] - ref).mean())
        dist = 1 - float(embed_sequences(net, [prepare(got, 512)])[0] @ e_ref)
        print(f"{path.name}: correlation {corr:.6f}, mean |diff| {mean:.2e}, embedding cosine distance {dist:.2e}")
        assert corr >= min_corr and mean <= max_mean and dist <= max_dist, (path.name, corr, mean, dist)


def test_essentia_analysis_options_and_resampler(tmp_path):
    """The resampler keeps every original sample and the rendered silence; the option is
    checked, recorded, and the default data set is unchanged by its existence."""
    from coversearch.synth import generate
    from coversearch.synth.generate import OPTIONS, performance_audio
    from coversearch.synth.render import upsample

    a, sr = performance_audio("W_22", 1, max_seconds=6)
    up, sr44 = performance_audio("W_22", 1, max_seconds=6, analysis="essentia")
    assert (sr, sr44) == (11025, 44100) and up.size == 4 * a.size
    np.testing.assert_array_equal(up, upsample(a))
    scale = float(up[::4] @ a) / float(a @ a)  # the peak rescale
    np.testing.assert_allclose(up[::4] / scale, a, atol=1e-5)
    assert abs(float(np.abs(up).max()) - float(np.abs(a).max())) < 1e-6
    sound = np.flatnonzero(a)
    assert not up[: 4 * sound[0]].any() and not up[4 * sound[-1] + 4:].any()
    with pytest.raises(ConfigError, match="hop 512"):
        generate(tmp_path / "x", n_works=1, hop=256, analysis="essentia", progress=False)
    with pytest.raises(ConfigError, match="unknown analysis"):
        generate(tmp_path / "x", n_works=1, analysis="slow", progress=False)
    # the default writes no "analysis" option: folders generated before it resume unchanged
    generate(tmp_path / "d", n_works=1, max_seconds=6, features=("hpcp",), layout="per-feature", progress=False)
    assert "analysis" not in json.loads((tmp_path / "d" / OPTIONS).read_text())
    with pytest.raises(ConfigError, match="analysis"):
        generate(tmp_path / "d", n_works=1, max_seconds=6, features=("hpcp",), layout="per-feature",
                 progress=False, analysis="essentia")
    r = CliRunner().invoke(main, ["synth", str(tmp_path / "e"), "--n-works", "1", "--max-seconds", "6",
                                  "--features", "hpcp,crema", "--layout", "per-feature", "--analysis", "essentia",
                                  "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e" / OPTIONS).read_text())["analysis"] == "essentia"
    with h5py.File(next((tmp_path / "e").glob("*_hpcp/W_*/*.h5"))) as h, \
            h5py.File(next((tmp_path / "e").glob("*_crema/W_*/*.h5"))) as c:
        assert c["crema"].shape[0] == h["hpcp"].shape[0] - 1  # as in the real files


# ---------------------------------------------------------------- decode errors
def _bad_files(d):
    """Every kind of unusable input, each with a fragment its message must contain."""
    from coversearch.config import SAMPLE_RATE

    d.mkdir(parents=True, exist_ok=True)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.mp3").write_bytes(b"this is not an mp3 file at all " * 40)
    with wave.open(str(d / "zero.wav"), "wb") as w:  # a valid header, no samples
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
    _write(d / "short.flac", 0.3 * np.sin(np.arange(SAMPLE_RATE * 2) / 10.0), SAMPLE_RATE)
    _write(d / "silence.wav", np.zeros(SAMPLE_RATE * 6), SAMPLE_RATE)
    (d / "notes.txt").write_text("not audio")
    return {"empty.wav": "empty file", "corrupt.mp3": "unreadable or corrupt", "zero.wav": "zero-length",
            "short.flac": "minimum is 5 s", "silence.wav": "all silence", "notes.txt": "unsupported format"}


def test_load_audio_errors_name_the_file_and_the_cause(tmp_path):
    from coversearch.audio.decode import load_audio

    for name, needle in _bad_files(tmp_path).items():
        with pytest.raises(DataError, match=needle) as e:
            load_audio(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="no such file"):
        load_audio(tmp_path / "missing.mp3")


def test_extract_bad_inputs_cli(tmp_path, music):
    base, files = music
    bad = _bad_files(tmp_path / "bad")
    runner = CliRunner()
    for name, needle in bad.items():
        r = runner.invoke(main, ["extract", str(tmp_path / "bad" / name), "--out", str(tmp_path / "o"), "--quiet"])
        _one_line_error(r, name, needle)
    r = runner.invoke(main, ["extract", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    _one_line_error(r, "nothing", "no such file")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("x")
    r = runner.invoke(main, ["extract", str(tmp_path / "docs"), "--out", str(tmp_path / "o")])
    _one_line_error(r, "docs", "no audio files")
    # --skip-bad --quiet: the good file is extracted, every bad one listed at the end
    r = runner.invoke(main, ["extract", str(tmp_path / "bad"), str(tmp_path / "bad" / "notes.txt"),
                             str(files["W_18_v0"]), "--out", str(tmp_path / "o"), "--skip-bad", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "skipped 6 file(s):" in r.output and "extracted 1 file(s)" in r.output
    for name, needle in bad.items():
        assert any(name in ln and needle in ln for ln in r.output.splitlines()), (name, r.output)
    assert not list((tmp_path / "o").rglob("*.tmp"))


# ---------------------------------------------------------------- extract
def test_extract_formats_metadata_and_resume(tmp_path, music):
    base, files = music
    out = tmp_path / "feat"
    runner = CliRunner()
    r = runner.invoke(main, ["extract", str(base / "music"), "--out", str(out), "--jobs", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "extracted 4 file(s), 0 unchanged" in r.output
    from coversearch.audio.batch import perf_id_of
    from coversearch.data.layout import find_performances
    from coversearch.data.metadata import load_metadata
    from coversearch.data.reader import load_chroma

    entries = find_performances(out, "hpcp")
    assert len(entries) == 4
    meta = load_metadata(out)
    for name, f in files.items():
        if name == "W_22_v1":
            continue
        pid = perf_id_of(f"music/{f.name}")
        c = load_chroma(next(e.path for e in entries if e.perf_id == pid), "hpcp")
        assert c.hop == 512 and c.frames.shape[1] == 12 and c.perf_id == pid
        assert c.frames.shape[0] == pytest.approx(SECONDS * 44100 / 512, rel=0.15)  # + lead/tail silence
        assert meta[pid]["perf_title"] == name and meta[pid]["source"] == str(f.resolve())  # no tags: the file name
    # rerun: nothing to do; a changed source is extracted again
    r = runner.invoke(main, ["extract", str(base / "music"), "--out", str(out), "--quiet"])
    assert "extracted 0 file(s), 4 unchanged" in r.output, r.output
    f = files["W_26_v0"]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = runner.invoke(main, ["extract", str(base / "music"), "--out", str(out), "--quiet"])
    assert "extracted 1 file(s), 3 unchanged" in r.output, r.output
    # the folder moved (same name, same files): nothing to extract, the sources follow
    import shutil

    moved = tmp_path / "elsewhere" / "music"
    shutil.copytree(base / "music", moved)  # copy2 keeps the mtimes
    r = runner.invoke(main, ["extract", str(moved), "--out", str(out), "--quiet"])
    assert "extracted 0 file(s), 4 unchanged" in r.output, r.output
    assert all(m["source"].startswith(str(moved.resolve())) for m in load_metadata(out).values())


def test_interrupted_run_leaves_complete_files_and_resumes(tmp_path, music):
    """A run that stops at a bad file keeps what it finished (whole files only); the next run resumes."""
    from coversearch.audio.batch import SIDECAR, extract

    base, files = music
    src = tmp_path / "src"
    src.mkdir()
    for name in ("W_18_v0", "W_92_v0"):
        os.symlink(files[name], src / files[name].name)
    (src / "X_corrupt.mp3").write_bytes(b"garbage" * 100)  # sorted last: found after the good ones
    out = tmp_path / "out"
    with pytest.raises(DataError, match="X_corrupt.mp3"):
        extract([src], out, jobs=1, progress=False)
    assert not list(out.rglob("*.tmp"))
    assert len(json.loads((out / SIDECAR).read_text())["files"]) == 2
    r = extract([src], out, jobs=1, progress=False, skip_bad=True, log=lambda m: None)
    assert r["unchanged"] == 2 and r["extracted"] == 0 and len(r["bad"]) == 1


def test_works_csv_groups_files(tmp_path, music):
    from coversearch.audio.batch import extract
    from coversearch.data.metadata import load_metadata

    base, files = music
    csv = tmp_path / "works.csv"
    csv.write_text(f"path,work_id\n{files['W_22_v0']},my song\n{files['W_22_v1']},my song\n{files['W_18_v0']},W_7\n")
    out = tmp_path / "o"
    extract([files["W_22_v0"], files["W_22_v1"], files["W_18_v0"]], out, works=csv, progress=False)
    meta = load_metadata(out)
    works = {m["perf_title"]: (m["work_id"], m["work_title"]) for m in meta.values()}
    assert works["W_22_v0"] == works["W_22_v1"] and works["W_22_v0"][1] == "my song"
    assert works["W_18_v0"][0] == "W_7"
    bad = tmp_path / "bad.csv"
    bad.write_text("only-one-column\n")
    with pytest.raises(DataError, match="bad.csv:1"):
        extract([files["W_18_v0"]], tmp_path / "o2", works=bad, progress=False)


def test_same_file_name_in_two_inputs_is_refused(tmp_path, music):
    from coversearch.audio.batch import extract

    _, files = music
    other = tmp_path / "elsewhere" / files["W_18_v0"].name
    other.parent.mkdir()
    other.write_bytes(files["W_18_v0"].read_bytes())
    with pytest.raises(ConfigError, match="same id"):
        extract([files["W_18_v0"], other], tmp_path / "o", progress=False)


@pytest.mark.skipif(__import__("importlib").util.find_spec("librosa") is None, reason="librosa (coversearch[cens]) absent")
def test_extract_cens_is_librosas():
    import librosa

    from coversearch.audio.extract import extract_array

    t = np.arange(44100 * 6 + 300) / 44100
    y = (0.3 * np.sin(2 * np.pi * 261.6 * t) + 0.2 * np.sin(2 * np.pi * 329.6 * t)).astype(np.float32)
    got = extract_array(y, ("hpcp", "cens"))
    want = librosa.feature.chroma_cens(y=y, sr=44100, hop_length=512).T
    assert got["cens"].dtype == np.float64 and got["cens"].shape == want.shape == (y.size // 512 + 1, 12)
    np.testing.assert_allclose(got["cens"], want, atol=1e-6)
    assert got["cens"][20:-20].mean(axis=0).argmax() in (0, 4)  # C and E: bin 0 is C
    assert got["hpcp"].shape == (-(-y.size // 512) + 1, 12)


# ---------------------------------------------------------------- index and query
@pytest.fixture(scope="module")
def audio_index(tmp_path_factory, music):
    from coversearch import api

    base, _ = music
    d = tmp_path_factory.mktemp("aidx")
    out = api.build_index(audio=base / "music", features_dir=d / "features", index_dir=d / "index", jobs=1,
                          progress=False, log=lambda m: None)
    assert out["count"] == 4
    return d


def test_query_audio_finds_the_sibling_first(audio_index, music):
    from coversearch import api
    from coversearch.audio.batch import perf_id_of

    _, files = music
    out = api.query(audio=files["W_22_v1"], k=4, index_dir=audio_index / "index")
    first = out["results"][0]
    assert first["perf_id"] == perf_id_of(f"music/{files['W_22_v0'].name}"), out["results"]
    assert not any(r["same_recording"] for r in out["results"])
    assert first["distance"] < out["results"][1]["distance"]


def test_query_audio_in_the_index_is_marked_same_recording(audio_index, music):
    _, files = music
    r = CliRunner().invoke(main, ["query", "--audio", str(files["W_18_v0"]), "--k", "3",
                                  "--index-dir", str(audio_index / "index"), "--rerank"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert "same recording as P_" in lines[0]
    assert "fused" in lines[1] and "distance" in lines[1]
    assert lines[2].lstrip().startswith("1=") and "W_18_v0" in lines[2]
    assert lines[-1].startswith("= the query's own recording")
    r = CliRunner().invoke(main, ["query", "--audio", str(files["W_18_v0"]), "--k", "2",
                                  "--index-dir", str(audio_index / "index"), "--json"])
    res = json.loads(r.output)["results"]
    assert res[0]["same_recording"] is True and res[1]["same_recording"] is False


def test_query_says_what_is_missing(audio_index, music):
    _, files = music
    idx = str(audio_index / "index")
    r = CliRunner().invoke(main, ["query", "--index-dir", idx])
    _one_line_error(r, "nothing to query", "--audio", code=5)
    r = CliRunner().invoke(main, ["query", "P_1", "--audio", str(files["W_18_v0"]), "--index-dir", idx])
    _one_line_error(r, "give one query", code=5)
    r = CliRunner().invoke(main, ["query", "--audio", str(audio_index / "nope.wav"), "--index-dir", idx])
    _one_line_error(r, "nope.wav", "no such file")
    r = CliRunner().invoke(main, ["build-index", "--data", str(audio_index / "features"), "--works", "w.csv",
                                  "--index-dir", str(audio_index / "x")])
    _one_line_error(r, "--works groups audio files: it needs --audio", code=5)


def test_audio_sequence_is_what_the_encoder_reads(music):
    from coversearch import api

    _, files = music
    seq = api.audio_sequence(files["W_92_v0"])
    assert seq.dtype == np.float32 and seq.shape[1] == 12
    assert seq.shape[0] == pytest.approx(SECONDS / 0.232, rel=0.15) and seq.max() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="crema"):
        api.audio_sequence(files["W_92_v0"], "crema")


def test_http_upload_of_audio(audio_index, music):
    """The HTTP service's upload route uses the same helper (and never echoes its private temp path)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from coversearch.serve import ServeConfig, create_app

    _, files = music
    app = create_app(ServeConfig(index_dir=str(audio_index / "index"), watch_seconds=0, max_upload_mb=8, max_k=10))
    with TestClient(app) as c:
        with open(files["W_18_v0"], "rb") as f:
            r = c.post("/api/query/file", files={"file": ("W_18_v0.wav", f, "audio/wav")}, data={"k": "2"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["results"][0]["same_recording"] is True and out["results"][0]["perf_title"] == "W_18_v0"
    assert "audio" not in out["query"] and out["query"]["kind"] == "audio"


# ---------------------------------------------------------------- compare
def test_compare_audio_files(music):
    """`compare` of two audio files (wav vs mp3, wav vs flac), with the shipped encoder and its calibration:
    two versions of W_22 are 'versions', W_22 against W_26 is not, and the scores are ordered alike."""
    _, files = music
    same = CliRunner().invoke(main, ["compare", str(files["W_22_v1"]), str(files["W_22_v0"]), "--json",
                                     "--index-dir", "/nonexistent"])  # two files need no index
    assert same.exit_code == 0, same.output
    same = json.loads(same.output)
    assert set(same) >= {"a", "b", "cosine_distance", "qmax", "qmax_norm", "fused", "versions", "confidence",
                         "threshold", "cosine_only", "calibration"}
    assert same["a"] == {"kind": "audio", "file": str(files["W_22_v1"]), "frames": same["a"]["frames"]}
    assert same["b"]["kind"] == "audio" and same["a"]["frames"] == pytest.approx(SECONDS / 0.232, rel=0.15)
    from coversearch import api

    other = api.compare(str(files["W_22_v1"]), str(files["W_26_v0"]))
    # measured (calibration at weight 0.6): same work fused 0.55 (versions, confidence 0.93), other work -0.02
    # (not versions, 0.999); at weight 0.5 it was 0.60 (0.95) and -0.04 (0.999)
    assert same["versions"] is True and other["versions"] is False
    assert same["fused"] > same["threshold"] > other["fused"]
    assert same["cosine_distance"] < other["cosine_distance"]
    assert 0.5 <= other["confidence"] <= 1.0 and 0.5 <= same["confidence"] <= 1.0
    r = CliRunner().invoke(main, ["compare", str(files["W_26_v0"]), str(files["W_22_v1"])])
    assert r.exit_code == 0 and "verdict: not versions" in r.output and "(audio)" in r.output, r.output


def test_compare_audio_with_an_indexed_id(audio_index, music):
    from coversearch import api
    from coversearch.audio.batch import perf_id_of

    _, files = music
    pid = perf_id_of(f"music/{files['W_22_v0'].name}")
    out = api.compare(str(files["W_22_v1"]), pid, index_dir=audio_index / "index")
    assert out["b"]["kind"] == "id" and out["b"]["perf_id"] == pid and out["versions"] is True
    # the indexed recording itself, as audio: the same embedding
    own = api.compare(str(files["W_22_v0"]), pid, index_dir=audio_index / "index")
    assert own["cosine_distance"] < 1e-4


def test_compare_bad_audio(tmp_path, music):
    _, files = music
    for name, needle in _bad_files(tmp_path).items():
        r = CliRunner().invoke(main, ["compare", str(files["W_22_v1"]), str(tmp_path / name)])
        _one_line_error(r, name, needle if name != "notes.txt" else "unsupported file type")
    r = CliRunner().invoke(main, ["compare", str(tmp_path / "missing.flac"), str(files["W_22_v1"])])
    _one_line_error(r, "missing.flac", "not found")


def test_query_audio_as_a_fresh_process(audio_index, music, tmp_path):
    """The console command as a user runs it: in a fresh process the audio is analysed in a forked
    child while the index and model load; the answer equals the in-process one, and bad audio is
    still one line with exit code 2."""
    import subprocess
    import sys
    from pathlib import Path

    from coversearch import api

    _, files = music
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, "-c", "import sys; from coversearch.cli import main; sys.exit(main())", "query",
           "--index-dir", str(audio_index / "index"), "--k", "3", "--json", "--audio"]
    r = subprocess.run(cmd + [str(files["W_22_v1"])], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)["results"]
    want = api.query(audio=files["W_22_v1"], k=3, index_dir=audio_index / "index")["results"]
    assert [x["perf_id"] for x in got] == [x["perf_id"] for x in want]
    assert [x["distance"] for x in got] == pytest.approx([x["distance"] for x in want], abs=1e-5)
    bad = _bad_files(tmp_path)
    r = subprocess.run(cmd + [str(tmp_path / "corrupt.mp3")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert "corrupt.mp3" in r.stderr and bad["corrupt.mp3"] in r.stderr and "Traceback" not in r.stderr
