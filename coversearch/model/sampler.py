"""P works x K versions per batch (as MOVE): every batch holds positives for
every anchor, which online mining / contrastive losses need."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def group_by_work(work_ids) -> dict[str, list[int]]:
    """{work_id: [rows]} in first-seen order."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(work_ids):
        groups[w].append(i)
    return dict(groups)


def pk_batches(groups: dict[str, list[int]], p: int, k: int, rng: np.random.Generator):
    """Yield lists of (row, work_index) for one epoch over works with >= 2 versions.

    Each work appears once per epoch; its K rows are drawn without replacement
    when it has >= K versions, else with replacement after using them all.
    """
    works = [w for w, rows in groups.items() if len(rows) >= 2]
    order = rng.permutation(len(works))
    for s in range(0, len(order) - p + 1, p):
        batch = []
        for wi, idx in enumerate(order[s : s + p]):
            rows = groups[works[idx]]
            if len(rows) >= k:
                pick = rng.choice(rows, size=k, replace=False)
            else:
                pick = np.concatenate([rng.permutation(rows), rng.choice(rows, size=k - len(rows))])
            batch.extend((int(r), wi) for r in pick)
        yield batch
