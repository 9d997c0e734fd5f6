"""Project-wide constants and small frozen configs (shared leaf).

The frame-rate convention lives here: Da-TACOS features are at hop 512 samples
of 44.1 kHz audio (86.13 frames/s) unless a file's root attribute
``hop_length`` says otherwise; the prepared cache and the model work at
``PREPARED_HOP`` (20 x 512 samples, about 0.232 s per frame).
"""

from __future__ import annotations

SAMPLE_RATE = 44100
DEFAULT_HOP = 512
PREPARED_HOP = 10240  # 20 real frames -> 4.31 frames/s
FEATURES = ("hpcp", "crema", "cens")
DATASET_OF_FEATURE = {"hpcp": "hpcp", "crema": "crema", "cens": "chroma_cens"}
DEFAULT_FEATURE = "hpcp"
SUBSETS = ("benchmark", "coveranalysis")


def at_least(option: str, value, minimum=1):
    """Return ``value`` if it is ``>= minimum`` (None passes: "not given"); else
    raise ConfigError naming the option, as every numeric option is checked."""
    from coversearch.errors import ConfigError

    if value is not None and not value >= minimum:
        raise ConfigError(f"{option} must be >= {minimum}, got {value}")
    return value
