"""Features of one recording, as Da-TACOS computed them (the public per-file API).

``extract_file(path, features)`` decodes a file (``decode.load_audio``) and
returns its frames at hop 512 of 44.1 kHz (86.13 frames/s):

- ``hpcp``: (T, 12) float32, the Da-TACOS HPCP chain (``hpcp.HpcpExtractor``,
  essentia), T = essentia's FrameGenerator count ``ceil(N / 512) + 1``;
  bin 0 is A.
- ``cens``: (T', 12) float64, ``librosa.feature.chroma_cens`` with librosa's
  defaults (CQT chroma, 41-frame smoothing) at hop 512, as Da-TACOS did;
  T' = ``N // 512 + 1`` (librosa's centred count); bin 0 is C. Needs the
  optional ``librosa`` (``pip install 'coversearch[cens]'``).

The extractor is built once per process and reused.
"""

from __future__ import annotations

import os

import numpy as np

from coversearch.config import DEFAULT_HOP, SAMPLE_RATE
from coversearch.errors import ConfigError

AUDIO_FEATURES = ("hpcp", "cens")

_HPCP = None


def _hpcp_extractor():
    global _HPCP
    if _HPCP is None:
        from coversearch.audio.hpcp import HpcpExtractor

        _HPCP = HpcpExtractor(SAMPLE_RATE)
    return _HPCP


def check_features(features) -> tuple[str, ...]:
    """Validate a feature list (names from ``AUDIO_FEATURES``); returns it de-duplicated, in canonical order.

    Raises:
        ConfigError: empty, unknown name, or ``cens`` without librosa installed.
    """
    feats = tuple(f.strip() for f in ([features] if isinstance(features, str) else features) if f.strip())
    bad = [f for f in feats if f not in AUDIO_FEATURES]
    if bad or not feats:
        raise ConfigError(f"unknown audio feature(s) {', '.join(bad) or '(none)'}: choose from {', '.join(AUDIO_FEATURES)}")
    if "cens" in feats:
        try:
            import librosa  # noqa: F401
        except ImportError:
            raise ConfigError("--features cens needs librosa: pip install 'coversearch[cens]'") from None
    return tuple(f for f in AUDIO_FEATURES if f in feats)


def cens(audio: np.ndarray) -> np.ndarray:
    """librosa's chroma_cens with its defaults at hop 512. (N,) float32 at 44.1 kHz -> (T', 12) float64."""
    import librosa

    c = librosa.feature.chroma_cens(y=np.asarray(audio, np.float32), sr=SAMPLE_RATE, hop_length=DEFAULT_HOP)
    return np.ascontiguousarray(c.T, dtype=np.float64)  # (12, T') -> (T', 12), Da-TACOS' orientation


def extract_array(audio: np.ndarray, features=("hpcp",)) -> dict[str, np.ndarray]:
    """Features of decoded audio. (N,) float32 mono at 44.1 kHz -> {feature: frames} (see module doc)."""
    feats = check_features(features)
    out: dict[str, np.ndarray] = {}
    if "hpcp" in feats:
        out["hpcp"] = _hpcp_extractor().hpcp(np.asarray(audio, np.float32), DEFAULT_HOP)
    if "cens" in feats:
        out["cens"] = cens(audio)
    return out


def extract_file(path: str | os.PathLike, features=("hpcp",)) -> dict[str, np.ndarray]:
    """Decode ``path`` and compute its features at hop 512 (see the module doc for shapes).

    Raises:
        DataError: the file is unreadable, unsupported, empty, too short or silent (one line, naming it).
        ConfigError: an unknown feature.
    """
    from coversearch.audio.decode import load_audio

    feats = check_features(features)
    return extract_array(load_audio(path), feats)
