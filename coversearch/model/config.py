"""The encoder's and the training run's configs: the single source of truth,
stored inside every checkpoint; a model is always rebuilt from its *stored*
config, never from today's defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of the encoder.

    Attributes:
        dim: embedding size (64 or 128).
        channels: filters of the pitch-circular first layer.
        kernel: its temporal width in prepared frames (0.232 s each).
        stride: its time step in prepared frames (2 = 0.46 s; every later
            layer runs at that rate, so 4 halves their cost and doubles the
            receptive field in seconds).
        hidden: channels of the temporal layers.
        n_temporal: temporal conv layers after the pitch max-pool.
        pitch_pool: ``late`` keeps the 12 rotations apart through every layer
            and the time pooling, and takes the max over rotations at the end
            (relative pitch is kept across the whole song); ``early`` pools
            over rotations right after the first layer (MOVE's choice).
        feature: the chroma feature it was trained on.
        hop: the prepared hop it expects (samples at 44.1 kHz).
    """

    dim: int = 128
    channels: int = 32
    kernel: int = 15
    stride: int = 2
    hidden: int = 64
    n_temporal: int = 3
    pitch_pool: str = "late"
    feature: str = "hpcp"
    hop: int = 10240

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """How a training run goes (all augmentations are on the prepared sequence).

    Attributes:
        loss: ``supcon`` (supervised contrastive), ``triplet`` (batch-hard
            online mining, MOVE-like) or ``ms`` (multi-similarity).
        epochs: passes over the training works.
        works_per_batch, versions_per_work: the P x K batch.
        crop: training crop length in prepared frames (256 = 59 s).
        lr, weight_decay: AdamW.
        temperature: supcon temperature.
        margin: triplet margin on cosine distance.
        val_fraction: share of works held out for checkpoint selection.
        stretch: time-stretch range (min, max) of the augmentation.
        noise: std of additive noise before re-normalisation.
        harmonics: largest weight of the random-timbre augmentation (copies
            of the chroma 7, 4 and 10 semitones up, where a tone's 3rd, 5th
            and 7th partials fall); 0 = off.
        mix: largest gain of another, unrelated performance mixed into a
            view (accompaniment, fills, a busy mix); 0 = off.
        seed: everything random derives from it.
        threads: torch intra-op threads.
    """

    loss: str = "supcon"
    epochs: int = 12
    works_per_batch: int = 16
    versions_per_work: int = 4
    crop: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    margin: float = 0.3
    val_fraction: float = 0.08
    stretch: tuple[float, float] = (0.75, 1.33)
    noise: float = 0.05
    harmonics: float = 0.0
    mix: float = 0.0
    seed: int = 0
    threads: int = 2

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        out = {k: v for k, v in d.items() if k in names}
        if "stretch" in out:
            out["stretch"] = tuple(out["stretch"])
        return cls(**out)

    def to_dict(self) -> dict:
        return asdict(self)
