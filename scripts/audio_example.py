"""Write the generated recordings of the README's audio example (and of nothing else).

``data/audio-example/covers/``: three versions each of W_22 and W_18 and one
performance of four other works of the demo profile (seed 0, standard
variation, whole length), as wav, flac and mp3 in turn;
``data/audio-example/new-take.mp3``: a fourth version of W_22, not in the folder.

    python scripts/audio_example.py [OUT]      # then the README's two commands
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    from coversearch.audio.decode import essentia_standard
    from coversearch.synth.generate import performance_audio

    es = essentia_standard()
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/audio-example")
    plan = [("W_22", v) for v in range(3)] + [("W_18", v) for v in range(3)] + \
           [(w, 0) for w in ("W_26", "W_92", "W_132", "W_218")]
    fmts = ("wav", "flac", "mp3")
    for i, (work, v) in enumerate(plan):
        fmt = fmts[i % 3]
        _write(es, out / "covers" / f"{work.lower()}-take{v + 1}.{fmt}", *performance_audio(work, v), fmt)
    _write(es, out / "new-take.mp3", *performance_audio("W_22", 3), "mp3")
    print(f"wrote {len(plan) + 1} files under {out}")


def _write(es, path: Path, audio, sr: int, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp3":  # mp3 at 44.1 kHz, as users have it
        audio = es.Resample(inputSampleRate=sr, outputSampleRate=44100, quality=0)(audio)
        sr = 44100
    es.MonoWriter(filename=str(path), format=fmt, sampleRate=sr, bitrate=192)(audio)


if __name__ == "__main__":
    main()
