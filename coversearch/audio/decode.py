"""Decoding audio files to float32 mono at 44.1 kHz, the rate Da-TACOS used.

essentia's ``MonoLoader`` (FFmpeg inside its wheel) decodes, downmixes and
resamples, as the Da-TACOS extraction did. Every way a file can fail becomes
a one-line ``DataError`` naming the file: missing, not a regular file,
unsupported extension, empty (0 bytes), unreadable or corrupt, zero-length
(a valid header and no samples), shorter than ``MIN_SECONDS``, all silence.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from coversearch.config import SAMPLE_RATE
from coversearch.errors import DataError

# what the FFmpeg of essentia's wheel decodes (m4a: AAC/ALAC, when the build has them)
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")

# The shortest recording worth embedding: the encoder's first layer spans 15
# prepared frames (15 x 0.232 s = 3.5 s), and the alignment re-rank stacks
# 9 frames of 0.464 s and needs one more to compare (4.6 s). Below 5 s a
# query has too little music for either; tests pin this against both configs.
MIN_SECONDS = 5.0
# peak below -80 dBFS (under one 16-bit step is -90 dBFS): nothing to hear
SILENCE_PEAK = 1e-4

_ESSENTIA = None


def essentia_standard():
    """essentia.standard, imported once with its info log silenced."""
    global _ESSENTIA
    if _ESSENTIA is None:
        import essentia

        essentia.log.infoActive = False  # before essentia.standard: silences its import banner
        essentia.log.warningActive = False
        import essentia.standard as es

        _ESSENTIA = es
    return _ESSENTIA


def essentia_algorithm(name: str, **params):
    """One essentia algorithm, configured as ``essentia.standard.<name>(**params)`` is.

    Importing ``essentia.standard`` instantiates every one of essentia's ~290
    algorithms to read its documentation (1.2 CPU-s here, a fifth of a whole
    ``query --audio``); this builds only the one asked for, from the same C++
    class with the same parameter conversion. Call it as
    ``algo.__compute__(*inputs)`` with inputs of essentia's types
    (C-contiguous float32 arrays, ...): the call ``essentia.standard`` wraps.
    """
    import essentia

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    from essentia import _essentia, common

    algo = _essentia.Algorithm(name)
    algo.__configure__(**{k: common.convertData(v, algo.paramType(k)) for k, v in params.items()})
    return algo


def check_audio_path(path: str | os.PathLike) -> Path:
    """Check that ``path`` is a non-empty regular file with an audio extension.

    Raises:
        DataError: it is missing, not a file, empty, or of an unsupported type.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file")
    if p.suffix.lower() not in AUDIO_EXTENSIONS:
        raise DataError(f"{p}: unsupported format {p.suffix or '(no extension)'!r}; "
                        f"supported: {', '.join(e[1:] for e in AUDIO_EXTENSIONS)}")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    return p


def load_audio(path: str | os.PathLike, *, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Decode an audio file to mono float32 at 44.1 kHz.

    Args:
        path: a file with one of ``AUDIO_EXTENSIONS``.
        min_seconds: refuse shorter recordings (0 disables the check).

    Returns:
        (N,) float32 samples in [-1, 1] at 44,100 Hz (channels averaged).

    Raises:
        DataError: one line naming the file: missing, unsupported, empty,
            unreadable/corrupt, zero-length, too short, or all silence.
    """
    p = check_audio_path(path)
    try:
        audio = essentia_algorithm("MonoLoader", filename=str(p), sampleRate=SAMPLE_RATE).__compute__()
    except RuntimeError as e:
        if _wav_frames(p) == 0:  # FFmpeg reports a header without samples as a read error
            raise DataError(f"{p}: zero-length audio (a header and no samples)") from None
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        reason = reason.split("error = ")[-1] if "error = " in reason else reason
        raise DataError(f"{p}: unreadable or corrupt audio ({reason})") from None
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise DataError(f"{p}: zero-length audio (no samples decoded)")
    if not np.isfinite(audio).all():
        raise DataError(f"{p}: corrupt audio (decoded NaN/inf samples)")
    seconds = audio.size / SAMPLE_RATE
    if min_seconds and seconds < min_seconds:
        raise DataError(f"{p}: too short to embed ({seconds:.2f} s; the minimum is {min_seconds:g} s)")
    if float(np.abs(audio).max()) < SILENCE_PEAK:
        raise DataError(f"{p}: all silence (peak below -80 dBFS)")
    return audio


def _wav_frames(p: Path) -> int | None:
    """Sample frames a wav header announces (None: not a readable wav)."""
    if p.suffix.lower() != ".wav":
        return None
    import wave

    try:
        with wave.open(str(p), "rb") as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError):
        return None


def read_tags(path: str | os.PathLike) -> dict[str, str]:
    """Title, artist, album and year from a file's tags ('' where absent or unreadable)."""
    try:
        reader = essentia_algorithm("MetadataReader", filename=str(path), failOnError=False)
        title, artist, album, _c, _g, _t, date, *_ = reader.__compute__()
    except RuntimeError:
        return {"title": "", "artist": "", "album": "", "year": ""}
    year = date[:4] if date[:4].isdigit() else ""
    return {"title": title.strip(), "artist": artist.strip(), "album": album.strip(), "year": year}
