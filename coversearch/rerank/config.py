"""The re-rank cascade's settings: the one source of every default.

:class:`RerankConfig` is what ``query --rerank``, ``evaluate --rerank``,
``tune-rerank`` and ``benchmarks/bench_alignment.py`` all read (a test pins
that no function carries a default of its own); an index folder stores its
copy as ``rerank.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from coversearch.align import AlignConfig
from coversearch.errors import ConfigError

QMAX_NORMS = ("min_len", "sqrt_prod", "query_max")


def check_weight(weight: float) -> float:
    """Return ``weight`` if it is in [0, 1], else raise ConfigError."""
    if not 0.0 <= float(weight) <= 1.0:
        raise ConfigError(f"rerank weight must be in [0, 1], got {weight}")
    return float(weight)


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`QMAX_NORMS`, else raise ConfigError."""
    if norm not in QMAX_NORMS:
        raise ConfigError(f"rerank norm must be one of {', '.join(QMAX_NORMS)}, got {norm!r}")
    return norm


@dataclass(frozen=True)
class RerankConfig:
    """How the re-rank cascade runs; stored in an index folder as ``rerank.json``.

    The first stage (cosine) proposes K1 items -- the only items that can be
    returned; the cascade re-orders them: a cheap alignment pass (``coarse``)
    over all K1, then the full alignment (``align``) over the best K2
    (``fine``). Each pass fuses ``(1 - weight) * cosine + weight * qmax_norm``.

    Attributes:
        shortlist_fraction: K1 as a share of the catalogue ...
        shortlist_min: ... but at least this many (K1 = max of the two,
            at most the catalogue).
        shortlist: a fixed K1 instead (0 = scale with the catalogue).
        fine: K2, how many of the coarse pass's best get the full alignment
            (all K1 when K1 <= K2: then there is no coarse pass).
        weight: fusion weight of the normalised Qmax, in [0, 1]
            (0 = embedding order, 1 = alignment order, cosine breaks ties).
        norm: Qmax normalisation, one of :data:`QMAX_NORMS`.
        align: the full alignment (its own ``norm`` is ignored: the raw
            Qmax is normalised here).
        coarse: the cheap pass's alignment: a lower frame rate (and a delay
            embedding spanning about the same seconds).
    """

    # Chosen on validation works (generator seed 3031, 1,211 items, 100
    # seeded queries; no evaluation set uses that seed) by
    # `benchmarks/bench_cascade.py tune` (README, issue-11 section): norm
    # sqrt_prod at weight 0.6 was best at every K1 (100-400) and K2; the
    # coarse pass at 0.70 s frames (downsample 3, m 6) with K2 = 25 full
    # alignments matched or beat every costlier setting at K1 = 200 and 300
    # (MAP 0.559 / 0.569 vs 0.558 / 0.568 aligning all K1 at the full rate).
    # K1 = 2% of the catalogue, at least 200: a rule, not tuned.
    shortlist_fraction: float = 0.02
    shortlist_min: int = 200
    shortlist: int = 0
    fine: int = 25
    weight: float = 0.6
    norm: str = "sqrt_prod"
    align: AlignConfig = field(default_factory=AlignConfig)
    coarse: AlignConfig = field(default_factory=lambda: AlignConfig(downsample=3, m=6))

    def __post_init__(self):
        if not 0.0 < self.shortlist_fraction <= 1.0:
            raise ConfigError(f"shortlist_fraction must be in (0, 1], got {self.shortlist_fraction}")
        if self.shortlist_min < 1 or self.shortlist < 0 or self.fine < 1:
            raise ConfigError(f"shortlist_min and fine must be >= 1 and shortlist >= 0, got "
                              f"{self.shortlist_min}, {self.fine}, {self.shortlist}")
        check_weight(self.weight)
        check_norm(self.norm)

    def first_stage_k(self, n_items: int) -> int:
        """K1 for a catalogue of ``n_items``: fixed, or ``max(min, round(share * N))``, at most N."""
        k = self.shortlist or max(self.shortlist_min, int(round(self.shortlist_fraction * n_items)))
        return int(max(1, min(k, n_items)))

    def to_dict(self) -> dict:
        """JSON-ready dict (the alignment configs nested)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RerankConfig":
        """Inverse of :meth:`to_dict`; unknown keys are a ConfigError."""
        try:
            d = dict(d)
            for key in ("align", "coarse"):
                if key in d:
                    d[key] = AlignConfig(**d[key])
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"invalid rerank config: {e}") from None
