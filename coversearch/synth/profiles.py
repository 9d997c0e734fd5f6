"""Which works and performances each generator profile holds.

- ``benchmark``: the real Da-TACOS benchmark membership (1,000 works x 13
  performances + 2,000 single-performance works, real ``W_``/``P_`` ids,
  shipped as ``coversearch/resources/da-tacos_benchmark_subset.csv``,
  CC BY-NC-SA 4.0, MTG / acoss), subset name ``benchmark``.
- ``demo``: a small part of that structure that includes ``W_22`` and its 13
  performances (so ``coversearch query P_22`` works), subset ``benchmark``.
- ``train``: works disjoint from the benchmark (``W_5000000+``,
  ``P_5000000+``; real ids are below 1,000,000), 2-8 versions each, subset
  ``coveranalysis``; versions are 60-120 s excerpts to keep generation cheap
  (the encoder trains on ~59 s crops).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

from coversearch.errors import ConfigError

TRAIN_ID_BASE = 5_000_000


@dataclass(frozen=True)
class Profile:
    """A generator profile.

    Attributes:
        name: demo, benchmark or train.
        subset: the Da-TACOS subset name written (benchmark or coveranalysis).
        n_works: default number of works.
        max_seconds: cap on a version's length (an excerpt is cut), or None.
        min_seconds: an excerpt is never shorter than this.
    """

    name: str
    subset: str
    n_works: int
    max_seconds: float | None
    min_seconds: float


PROFILES = {
    "demo": Profile("demo", "benchmark", 40, 300.0, 30.0),
    "benchmark": Profile("benchmark", "benchmark", 3000, 330.0, 30.0),
    "train": Profile("train", "coveranalysis", 6000, 120.0, 60.0),
}
# demo: W_22 + this many other 13-version works; the rest are singletons
DEMO_CLIQUES = 9


def get_profile(name: str) -> Profile:
    """The profile ``name``; raises ConfigError if unknown."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def _num(ident: str) -> int:
    return int(ident.split("_", 1)[1])


def benchmark_membership() -> list[tuple[str, list[str]]]:
    """The real benchmark cliques ``[(work_id, [perf_id, ...]), ...]`` in file order."""
    text = resources.files("coversearch.resources").joinpath("da-tacos_benchmark_subset.csv").read_text()
    works: dict[str, list[str]] = {}
    for row in csv.DictReader(text.splitlines()):
        works.setdefault(row["work_id"], []).append(row["track_id"])
    return list(works.items())


def membership(profile: Profile, seed: int, n_works: int | None = None) -> list[tuple[str, list[str]]]:
    """The works of a profile and their performance ids.

    Args:
        profile: the profile.
        seed: generation seed (draws the train versions-per-work counts).
        n_works: override the profile's number of works (small test or quick
            training sets); for benchmark/demo a third are 13-version works.

    Returns:
        ``[(work_id, [perf_id, ...]), ...]``, ordered by work id number.
    """
    if n_works is not None and n_works < 1:
        raise ConfigError(f"--n-works must be >= 1, got {n_works}")
    if profile.name == "train":
        n = n_works or profile.n_works
        out, next_perf = [], TRAIN_ID_BASE
        for i in range(n):
            k = int(np.random.default_rng([seed, TRAIN_ID_BASE + i, 7]).integers(2, 9))
            out.append((f"W_{TRAIN_ID_BASE + i}", [f"P_{next_perf + j}" for j in range(k)]))
            next_perf += k
        return out
    real = benchmark_membership()
    cliques = sorted((w for w in real if len(w[1]) > 1), key=lambda w: _num(w[0]))
    singles = sorted((w for w in real if len(w[1]) == 1), key=lambda w: _num(w[0]))
    if profile.name == "demo":
        n = n_works or profile.n_works
        w22 = [w for w in cliques if w[0] == "W_22"]
        others = [w for w in cliques if w[0] != "W_22"]
        n_cl = min((n - 1) // 2, DEMO_CLIQUES)
        chosen = w22 + others[:n_cl] + singles[: max(0, n - 1 - n_cl)]
    else:
        if n_works is None:
            chosen = cliques + singles
        else:
            n_cl = max(1, round(n_works / 3)) if n_works > 1 else 1
            chosen = cliques[:n_cl] + singles[: n_works - n_cl]
    return sorted(chosen, key=lambda w: _num(w[0]))
