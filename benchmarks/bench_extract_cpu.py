"""CPU cost of the extraction stage (audio -> HPCP with Da-TACOS' settings), for
the sizing table of issue 15: essentia's SpectralPeaks -> SpectralWhitening ->
HPCP chain at 44.1 kHz, frame 4096, hop 512, on synthetic audio (four tones +
noise; the cost depends on the frame count, barely on the content). Decoding
(mp3 etc.) is not included. Process CPU time, so other jobs on the machine
inflate it only slightly.

    python benchmarks/bench_extract_cpu.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import write_result

SONG_SECONDS = 210.0  # a typical 3.5-minute recording


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio analysed")
    args = ap.parse_args(argv)
    import essentia.standard as es

    sr = 44100
    t = np.arange(int(sr * args.seconds)) / sr
    rng = np.random.default_rng(0)
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) + 0.05 * rng.standard_normal(len(t))
    x = (x / np.abs(x).max() * 0.8).astype(np.float32)
    w, sp = es.Windowing(type="blackmanharris62"), es.Spectrum()
    pk = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-5, minFrequency=100, maxFrequency=3500,
                          maxPeaks=100, sampleRate=sr)
    wh = es.SpectralWhitening(maxFrequency=3500, sampleRate=sr)
    hp = es.HPCP(size=12, referenceFrequency=440, harmonics=8, bandPreset=True, minFrequency=100, maxFrequency=3500,
                 weightType="cosine", nonLinear=False, windowSize=1.0, sampleRate=sr, normalized="unitMax")
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for fr in es.FrameGenerator(x, frameSize=4096, hopSize=512, startFromZero=True):
        s = sp(w(fr))
        f, m = pk(s)
        hp(f, wh(s, f, m))
        n += 1
    cpu = time.process_time() - c0
    per_song = cpu / args.seconds * SONG_SECONDS
    row = {"audio_s": args.seconds, "frames": n, "cpu_s": round(cpu, 3), "cpu_s_per_song_210s": round(per_song, 2),
           "cpu_hours_per_million_songs": round(per_song * 1e6 / 3600, 0)}
    print(row)
    return write_result("extract_cpu", {"rows": [row]}, args=vars(args), seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
