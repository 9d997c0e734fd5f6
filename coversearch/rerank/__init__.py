"""Re-ranking by alignment: settings (``config``), the query-time cascade
(``cascade``) and its offline tuning (``tune``)."""

from coversearch.rerank.cascade import (
    Reranked,
    align_shortlist,
    cascade_order,
    cosine_shortlist,
    fuse,
    normalise_qmax,
    order,
    rerank,
    reranked_full_scores,
    score_query,
)
from coversearch.rerank.config import QMAX_NORMS, RerankConfig, check_norm, check_weight
from coversearch.rerank.tune import (
    AlignedShortlist,
    aligned_shortlists,
    evaluate_setting,
    replay,
    tune,
    tune_on_validation,
)

__all__ = [
    "QMAX_NORMS", "RerankConfig", "check_norm", "check_weight", "Reranked", "score_query", "cascade_order",
    "rerank", "fuse", "normalise_qmax", "order", "align_shortlist", "reranked_full_scores", "cosine_shortlist",
    "AlignedShortlist", "aligned_shortlists", "evaluate_setting", "replay", "tune", "tune_on_validation",
]
