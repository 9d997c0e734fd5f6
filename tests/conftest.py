"""Shared fixtures: the real Da-TACOS sample (read in place, never copied) and
small generated h5 files written in the real format."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "datacos" / "real-sample"
if not REAL.is_dir():  # CI clones main with shared/ beside it
    REAL = Path(__file__).resolve().parents[2] / "shared" / "datacos" / "real-sample"


@pytest.fixture(scope="session")
def real_root() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real Da-TACOS sample not found at {REAL}")
    return REAL


def write_perf(path: Path, dataset: str, array: np.ndarray, work_id: str, perf_id: str, **attrs) -> Path:
    """Write one h5 performance file with the real root attributes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h:
        h.attrs["label"] = np.bytes_(work_id)
        h.attrs["track_id"] = np.bytes_(perf_id)
        for k, v in attrs.items():
            h.attrs[k] = v
        h.create_dataset(dataset, data=array, compression="gzip", compression_opts=9, shuffle=True)
    return path


def write_versions_root(root: Path, seed: int = 0, *, n_works: int = 6, n_versions: int = 3, first_work: int = 1,
                        id_offset: int = 1) -> Path:
    """A per-feature benchmark layout of works W_first_work.. with n_versions each:
    transposed, noisy copies of the work's random template (hop 2048); the
    versions of W_w are P_{(w - id_offset) * 10 + v + 1}."""
    rng = np.random.default_rng(seed)
    for w in range(first_work, first_work + n_works):
        template = np.abs(rng.normal(size=(400, 12))).astype(np.float32)
        for v in range(n_versions):
            x = np.roll(template, int(rng.integers(0, 12)), axis=1) + 0.3 * rng.random((400, 12)).astype(np.float32)
            x = x / x.max(axis=1, keepdims=True)
            wid, pid = f"W_{w}", f"P_{(w - id_offset) * 10 + v + 1}"
            write_perf(root / "da-tacos_benchmark_subset_hpcp" / f"{wid}_hpcp" / f"{pid}_hpcp.h5", "hpcp", x, wid, pid,
                       hop_length=np.int64(2048))
    return root


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """A per-feature benchmark layout: 6 works x 3 versions of random-walk chroma,
    versions are transposed, noisy copies of their work's template (W_1: P_1..P_3)."""
    return write_versions_root(tmp_path / "tiny")


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory) -> Path:
    """A real index with P_22 and W_22's other versions: the demo profile cut to
    3 works (W_22 + one 13-version work + one single, 27 performances of at most
    30 s, hop 4096), embedded by the shipped encoder. About 25 s on one core;
    shared by the server and page tests."""
    from coversearch import api
    from coversearch.synth import generate

    base = tmp_path_factory.mktemp("demo-index")
    generate(base / "data", profile="demo", seed=0, hop=4096, n_works=3, max_seconds=30, features=("hpcp",),
             layout="per-feature", progress=False, jobs=1)
    api.build_index(base / "data", index_dir=base / "index", progress=False, jobs=1, log=lambda *a: None)
    return base / "index"


def write_generated_wav(path: Path, work_id: str = "W_22", version: int = 40, seed: int = 0,
                        seconds: float = 20.0) -> Path:
    """Render a new version of a generated work (the synthetic generator's
    music and synthesiser, seed ``seed``) to a 16-bit mono WAV at the
    generator's rate; ``version`` beyond the work's own versions gives a
    performance no index holds. Also used by benchmarks/bench_serve.py."""
    import wave

    from coversearch.synth.config import variation_config
    from coversearch.synth.music import compose_work, perform
    from coversearch.synth.render import SR, render_audio

    cfg = variation_config("standard")
    wnum = int(work_id.split("_", 1)[1])
    work = compose_work(np.random.default_rng([seed, wnum]), work_id)
    r_perf, r_audio = np.random.default_rng([seed, wnum, version, 4242]).spawn(2)
    perf = perform(work, r_perf, cfg, max_seconds=seconds, min_seconds=min(seconds, 10.0))
    audio, _ = render_audio(perf, r_audio, cfg)
    pcm = (np.clip(0.9 * audio / max(1e-9, float(np.abs(audio).max())), -1, 1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return path
