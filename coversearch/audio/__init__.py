"""Audio files -> Da-TACOS features (decode, HPCP / chroma_cens, the ``extract`` job).

This stage turns a user's recordings into the same features the benchmark
ships, with the extractor Da-TACOS used (essentia's HPCP chain at 44.1 kHz,
hop 512), so the shipped encoder and any index read them unchanged.

Modules:
    decode: ``load_audio(path)`` -> float32 mono 44.1 kHz, with one-line errors.
    hpcp: the HPCP extractor, shared with the generator (``coversearch.synth``).
    extract: ``extract_file(path, features)`` -> {dataset name: frames}.
    batch: the ``extract`` job over files and folders (parallel, resumable).
"""

from coversearch.audio.decode import AUDIO_EXTENSIONS, MIN_SECONDS, load_audio

__all__ = ["AUDIO_EXTENSIONS", "MIN_SECONDS", "load_audio"]
