"""The generator's knobs: one frozen dataclass per concern, with named presets.

``VariationConfig`` holds every realism/difficulty knob of how a performance
departs from its work. ``standard`` is what the shipped encoder trains on;
``wide`` is a held-out setting (wider ranges, plus timbres, accompaniment
idioms and reharmonisation devices that ``standard`` never uses) on which the
transfer of a model trained on ``standard`` is measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coversearch.errors import ConfigError

# Timbres, accompaniment patterns and reharmonisation devices by preset. The
# ``wide`` extras are never drawn by ``standard``.
STANDARD_TIMBRES = ("piano", "epiano", "organ", "guitar", "nylon", "strings", "pad", "flute",
                    "sax", "brass", "synthlead", "voice_a", "voice_o", "voice_e")
WIDE_EXTRA_TIMBRES = ("bell", "distorted", "choir", "clarinet", "harpsichord", "voice_i")
STANDARD_PATTERNS = ("block", "arpeggio", "strum", "sustain", "offbeat", "alberti", "broken")
WIDE_EXTRA_PATTERNS = ("tremolo", "skank", "stabs")
STANDARD_REHARM = ("relative", "quality", "substitute", "secondary", "tritone", "borrowed",
                   "passing")
WIDE_EXTRA_REHARM = ("mediant", "modal", "pedal")


@dataclass(frozen=True)
class VariationConfig:
    """How far a performance may depart from its work (the difficulty knobs).

    Attributes:
        name: preset name, stored in the generation summary.
        keep_key_prob: probability a version keeps the original key; otherwise
            any of the other 11 transpositions, uniformly.
        tempo_range: (low, high) factor on the work's tempo, log-uniform.
        tempo_drift: std of the slow log-tempo random walk per bar.
        reharm_range: share of chords reharmonised in an ordinary version.
        hard_melody_share: share of versions that keep the melody while
            changing most of the harmony (the most common real-cover case).
        hard_reharm_range: share of chords changed in such a version.
        hard_structure_share: share of versions with heavy structural change.
        drop_prob / repeat_prob / swap_prob: per-section structural edits.
        new_intro_prob / new_outro_prob: an intro/outro not in the work.
        excerpt_prob: probability of an excerpt; excerpt_range its length share.
        melody_change_prob: per-note probability of a changed melody pitch.
        melody_rhythm_jitter: std (beats) of melody onset displacement.
        melody_rest_prob: per-section probability the melody is absent.
        melody_gain_db: (low, high) melody level relative to the accompaniment.
        drums_prob: probability of a drum kit.
        fills_prob / fill_density: probability of a fill/riff/solo instrument,
            and the share of chords it plays over (solos fill melody-less sections).
        snr_db: (low, high) recording-noise SNR (dB, broadband, non-stationary).
            Low on purpose: it stands for everything a note model lacks
            (consonants, breath, cymbals, room, dense mixes); at 3-20 dB the
            frame-to-frame statistics of HPCP (lag-1/lag-8 autocorrelation,
            how often the strongest bin changes) approach those of the real
            sample file, which a clean synth does not.
        reverb_prob / rt60_range: reverb probability and decay time (s).
        timbres / patterns / reharm_kinds: the pools drawn from.
    """

    name: str = "standard"
    keep_key_prob: float = 0.2
    tempo_range: tuple[float, float] = (0.7, 1.4)
    tempo_drift: float = 0.012
    reharm_range: tuple[float, float] = (0.1, 0.4)
    hard_melody_share: float = 0.36
    hard_reharm_range: tuple[float, float] = (0.55, 0.9)
    hard_structure_share: float = 0.15
    drop_prob: float = 0.12
    repeat_prob: float = 0.08
    swap_prob: float = 0.1
    new_intro_prob: float = 0.5
    new_outro_prob: float = 0.5
    excerpt_prob: float = 0.25
    excerpt_range: tuple[float, float] = (0.3, 1.0)
    melody_change_prob: float = 0.08
    melody_rhythm_jitter: float = 0.08
    melody_rest_prob: float = 0.1
    melody_gain_db: tuple[float, float] = (-9.0, 4.0)
    drums_prob: float = 0.7
    fills_prob: float = 0.6
    fill_density: tuple[float, float] = (0.1, 0.5)
    snr_db: tuple[float, float] = (3.0, 20.0)
    reverb_prob: float = 0.6
    rt60_range: tuple[float, float] = (0.2, 1.6)
    timbres: tuple[str, ...] = STANDARD_TIMBRES
    patterns: tuple[str, ...] = STANDARD_PATTERNS
    reharm_kinds: tuple[str, ...] = STANDARD_REHARM


VARIATIONS: dict[str, VariationConfig] = {
    "standard": VariationConfig(),
    "wide": VariationConfig(
        name="wide",
        keep_key_prob=0.1,
        tempo_range=(0.6, 1.6),
        tempo_drift=0.025,
        reharm_range=(0.2, 0.6),
        hard_melody_share=0.4,
        hard_reharm_range=(0.7, 1.0),
        hard_structure_share=0.3,
        drop_prob=0.2,
        repeat_prob=0.15,
        swap_prob=0.2,
        new_intro_prob=0.7,
        new_outro_prob=0.7,
        excerpt_prob=0.4,
        excerpt_range=(0.25, 1.0),
        melody_change_prob=0.15,
        melody_rhythm_jitter=0.15,
        melody_rest_prob=0.2,
        melody_gain_db=(-14.0, 4.0),
        drums_prob=0.8,
        fills_prob=0.8,
        fill_density=(0.2, 0.7),
        snr_db=(0.0, 15.0),
        reverb_prob=0.8,
        rt60_range=(0.4, 3.0),
        timbres=STANDARD_TIMBRES + WIDE_EXTRA_TIMBRES,
        patterns=STANDARD_PATTERNS + WIDE_EXTRA_PATTERNS,
        reharm_kinds=STANDARD_REHARM + WIDE_EXTRA_REHARM,
    ),
}


def variation_config(name: str, **overrides) -> VariationConfig:
    """The preset ``name`` (``standard`` or ``wide``), with optional field overrides.

    Raises:
        ConfigError: unknown preset or field.
    """
    if name not in VARIATIONS:
        raise ConfigError(f"unknown variation {name!r}: choose one of {', '.join(VARIATIONS)}")
    try:
        return replace(VARIATIONS[name], **overrides)
    except TypeError as e:
        raise ConfigError(f"bad variation override: {e}") from None
