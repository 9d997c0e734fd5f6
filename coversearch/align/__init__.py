"""Pairwise alignment reference (Serra et al. 2009 cross recurrence + Qmax)."""

from coversearch.align.qmax import (
    AlignConfig,
    cross_recurrence,
    delay_embed,
    oti,
    qmax,
    qmax_score,
    qmax_scores_one_to_many,
    to_alignment_rate,
)

__all__ = [
    "AlignConfig",
    "cross_recurrence",
    "delay_embed",
    "oti",
    "qmax",
    "qmax_score",
    "qmax_scores_one_to_many",
    "to_alignment_rate",
]
