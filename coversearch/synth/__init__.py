"""The synthetic Da-TACOS generator (``coversearch synth``).

A note-level musical model of works and their versions (``music``), rendered
to audio and through essentia's HPCP (``render``), written in exactly the
on-disk format of Da-TACOS (``writer``), for the profiles ``demo``,
``benchmark`` and ``train`` (``profiles``); ``generate`` runs it all. The
difficulty knobs are the fields of ``VariationConfig`` (``config``).
"""

from coversearch.synth.config import VARIATIONS, VariationConfig, variation_config
from coversearch.synth.generate import generate
from coversearch.synth.profiles import PROFILES

__all__ = ["generate", "VariationConfig", "VARIATIONS", "variation_config", "PROFILES"]
