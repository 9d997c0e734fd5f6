"""Tests of the re-rank stage (coversearch.rerank)."""

import json

import numpy as np
import pytest

from coversearch.align import AlignConfig
from coversearch.errors import ConfigError, DataError
from coversearch.rerank import (
    AlignedShortlist,
    RerankConfig,
    align_shortlist,
    aligned_shortlists,
    evaluate_setting,
    fuse,
    normalise_qmax,
    order,
    rerank,
    reranked_full_scores,
    tune,
)


def _song(rng, n_chords=30):
    frames = []
    for _ in range(n_chords):
        chord = np.zeros(12, np.float32)
        chord[rng.choice(12, size=3, replace=False)] = rng.uniform(0.5, 1.0, 3)
        frames.append(np.tile(chord, (int(rng.integers(3, 8)), 1)))
    x = np.concatenate(frames)
    x = x + 0.15 * rng.random(x.shape)
    return (x / x.max(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_fuse_is_monotone_in_both_inputs(weight):
    rng = np.random.default_rng(0)
    cos = rng.uniform(-1, 1, 200)
    q = rng.uniform(0, 1, 200)
    base = fuse(cos, q, weight)
    up_cos = fuse(cos + rng.uniform(0, 0.5, 200), q, weight)
    up_q = fuse(cos, q + rng.uniform(0, 0.5, 200), weight)
    assert (up_cos >= base).all() and (up_q >= base).all()
    if weight < 1:
        assert (up_cos > base).any()
    if weight > 0:
        assert (up_q > base).any()
    # order-preserving: sorting by one input with the other fixed agrees
    same_q = fuse(np.sort(cos), np.full(200, 0.4), weight)
    assert (np.diff(same_q) >= 0).all()


def test_fuse_rejects_weight_outside_unit_interval():
    with pytest.raises(ConfigError):
        fuse([0.1], [0.2], 1.5)
    with pytest.raises(ConfigError):
        RerankConfig(weight=-0.1)


def test_order_breaks_ties_by_cosine_then_row():
    rows = np.array([7, 3, 5, 1])
    cos = np.array([0.5, 0.9, 0.5, 0.5])
    fused = np.array([1.0, 1.0, 1.0, 1.0])
    assert rows[order(rows, cos, fused)].tolist() == [3, 1, 5, 7]
    # input order does not matter
    p = np.array([2, 0, 3, 1])
    assert rows[p][order(rows[p], cos[p], fused[p])].tolist() == [3, 1, 5, 7]


def _shortlist_case(seed=1, k=6):
    rng = np.random.default_rng(seed)
    query = _song(rng)
    seqs = [_song(rng) for _ in range(k)]
    cover_at = k - 1
    seqs[cover_at] = np.roll(query[10:], 5, axis=1)  # a transposed, cropped cover, last by cosine
    rows = np.array([40, 11, 25, 3, 17, 8])[:k]
    cos = np.linspace(0.9, 0.4, k)
    return query, seqs, rows, cos, cover_at


def test_rerank_only_reorders_and_lifts_the_aligned_cover():
    query, seqs, rows, cos, cover_at = _shortlist_case()
    out_rows, fused = rerank(rows, cos, query, seqs, weight=0.5, norm="min_len")
    assert sorted(out_rows.tolist()) == sorted(rows.tolist())
    assert (np.diff(fused) <= 0).all()
    assert out_rows[0] == rows[cover_at]
    # callable access gives the same result
    by_row = dict(zip(rows.tolist(), seqs))
    out2, fused2 = rerank(rows, cos, query, lambda r: by_row[r], weight=0.5, norm="min_len", jobs=2)
    assert out2.tolist() == out_rows.tolist()
    np.testing.assert_allclose(fused2, fused)


def test_weight_zero_keeps_cosine_order_without_aligning():
    query, seqs, rows, cos, _ = _shortlist_case()

    def boom(_row):
        raise AssertionError("weight 0 must not read sequences")

    out_rows, fused = rerank(rows, cos, query, boom, weight=0.0)
    assert out_rows.tolist() == rows.tolist()
    np.testing.assert_allclose(fused, cos)


def test_k_larger_than_index_drops_faiss_padding():
    query, seqs, rows, cos, cover_at = _shortlist_case(k=4)
    padded_rows = np.concatenate([rows, [-1, -1, -1]])
    padded_cos = np.concatenate([cos, [-np.inf] * 3])
    padded_seqs = list(seqs) + [None, None, None]
    out_rows, fused = rerank(padded_rows, padded_cos, query, padded_seqs, weight=0.5)
    assert sorted(out_rows.tolist()) == sorted(rows.tolist())
    assert np.isfinite(fused).all()
    empty_rows, empty_scores = rerank([-1, -1], [0.0, 0.0], query, [None, None], weight=0.5)
    assert empty_rows.shape == (0,) and empty_scores.shape == (0,)


def test_rerank_eligibility_is_the_shortlist_for_any_setting():
    query, seqs, rows, cos, _ = _shortlist_case()
    for norm in ("min_len", "sqrt_prod", "query_max"):
        for w in (0.0, 0.25, 1.0):
            out_rows, _ = rerank(rows, cos, query, seqs, weight=w, norm=norm)
            assert set(out_rows.tolist()) == set(rows.tolist()) and len(out_rows) == len(rows)


def test_rerank_input_errors():
    query, seqs, rows, cos, _ = _shortlist_case()
    with pytest.raises(DataError):
        rerank(rows, cos[:-1], query, seqs)
    with pytest.raises(DataError):
        rerank(rows, cos, query, seqs[:-1])
    with pytest.raises(DataError):
        rerank(np.array([1, 1]), np.array([0.5, 0.4]), query, seqs[:2])
    with pytest.raises(ConfigError):
        rerank(rows, cos, query, seqs, norm="zscore")


def test_normalisations():
    raw = np.array([0.0, 10.0, 40.0])
    np.testing.assert_allclose(normalise_qmax(raw, 100, np.array([50, 100, 200]), "min_len"), [0, 0.1, 0.4])
    np.testing.assert_allclose(normalise_qmax(raw, 100, np.array([100, 100, 100]), "sqrt_prod"), raw / 100.0)
    np.testing.assert_allclose(normalise_qmax(raw, 100, np.array([1, 1, 1]), "query_max"), [0, 0.25, 1])
    assert (normalise_qmax(np.zeros(3), 10, np.ones(3), "query_max") == 0).all()


def test_reranked_full_scores_put_shortlist_first_in_order():
    cos = np.array([0.1, 0.9, 0.8, 0.7, 0.95])
    s = reranked_full_scores(cos, np.array([3, 1]))
    assert np.argsort(-s).tolist()[:2] == [3, 1]
    assert np.argsort(-s).tolist()[2:] == [4, 2, 0]


def test_config_round_trips_through_json():
    cfg = RerankConfig(shortlist=50, weight=0.3, norm="query_max", align=AlignConfig(gamma_o=5.0))
    assert RerankConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError):
        RerankConfig.from_dict({"shortlist": 10, "bogus": 1})


def test_tune_prefers_alignment_when_it_finds_the_cover():
    rng = np.random.default_rng(3)
    # 4 works x 2 versions; the embedding ranks the version of each work last
    songs = [_song(rng) for _ in range(4)]
    seqs = songs + [np.roll(s[8:], 3, axis=1) for s in songs]
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    n = len(seqs)
    cos_all = rng.uniform(0.5, 0.9, (n, n))
    for i in range(n):
        cos_all[i, (i + 4) % n] = 0.2  # the cover looks unrelated to the embedding
    shortlists = []
    for i in range(n):
        cand = np.array([j for j in np.argsort(-cos_all[i]) if j != i])
        raw, t_q, t_c = align_shortlist(seqs[i], [seqs[j] for j in cand])
        shortlists.append(AlignedShortlist(i, cand, cos_all[i, cand], raw, t_q, t_c))
    emb = evaluate_setting(shortlists, cos_all, labels, weight=0.0, norm="min_len")
    assert emb["mr1"] == pytest.approx(n - 1)
    table = tune(shortlists, cos_all, labels, weights=(0.0, 0.5, 1.0))
    best = table[0]
    assert best["weight"] > 0 and best["map"] == pytest.approx(1.0)


def test_aligned_shortlists_exclude_self_and_follow_cosine_order():
    rng = np.random.default_rng(4)
    seqs = [_song(rng) for _ in range(5)]
    cos = rng.uniform(0, 1, (5, 5))
    out = aligned_shortlists(cos[:2], [0, 1], lambda r: seqs[r], shortlist=10)
    for q, s in enumerate(out):
        assert q not in s.rows and len(s.rows) == 4
        assert (np.diff(s.cosine) <= 0).all()
        assert s.raw.shape == (4,) and s.t_cands.shape == (4,)


# ------------------------------------------------------------- the cascade


def _cascade_case(seed=5, k=24, n_covers=3):
    rng = np.random.default_rng(seed)
    query = _song(rng, 40)
    seqs = [_song(rng, int(rng.integers(25, 45))) for _ in range(k)]
    covers = rng.choice(k, n_covers, replace=False)
    for c in covers:
        seqs[c] = np.roll(query[int(rng.integers(0, 15)):], int(rng.integers(0, 12)), axis=1)
    rows = rng.permutation(1000)[:k].astype(np.int64)
    cos = np.sort(rng.uniform(0.2, 0.9, k))[::-1]
    return query, seqs, rows, cos, rows[covers]


@pytest.mark.parametrize("fine", [1, 5, 24, 100])
@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_cascade_never_changes_eligible_items_only_their_order(fine, weight):
    from coversearch.rerank import score_query

    query, seqs, rows, cos, _ = _cascade_case()
    padded = np.concatenate([rows, [-1, -1]])
    cfg = RerankConfig(fine=fine, weight=weight, shortlist=len(rows))
    r = score_query(padded, np.concatenate([cos, [-np.inf, -np.inf]]), query, list(seqs) + [None, None], config=cfg)
    assert sorted(r.rows.tolist()) == sorted(rows.tolist())
    n_fine = 0 if weight == 0 else min(fine, len(rows))
    assert (r.stage == "fine").sum() == n_fine
    for st in ("fine", "coarse", "cosine"):  # scores non-increasing within each pass
        assert (np.diff(r.score[r.stage == st]) <= 0).all()
    # the cosine of each returned row is its own
    by_row = dict(zip(rows.tolist(), cos.tolist()))
    np.testing.assert_allclose(r.cosine, [by_row[x] for x in r.rows.tolist()])


def test_cascade_lifts_covers_through_the_coarse_pass():
    from coversearch.rerank import score_query

    query, seqs, rows, cos, covers = _cascade_case()
    r = score_query(rows, cos, query, seqs, config=RerankConfig(fine=4, weight=0.5, norm="min_len"))
    assert set(r.rows[:3].tolist()) == set(covers.tolist())


def test_tuning_replays_the_query_time_cascade_exactly():
    """One path: the offline replay of stored alignments orders exactly as score_query."""
    from coversearch.rerank import replay, score_query

    query, seqs, rows, cos, _ = _cascade_case(seed=6)
    by_row = dict(zip(rows.tolist(), seqs))
    base = RerankConfig()
    sl = aligned_shortlists(np.array([[1.0] + cos.tolist()]), [0],
                            lambda r: query if r == 0 else by_row[int(rows[r - 1])],
                            shortlist=len(rows), coarse=base.coarse)[0]
    sl_rows = rows[sl.rows - 1]
    for fine in (3, 10, 30):
        cfg = RerankConfig(fine=fine, norm="min_len", weight=0.6)
        live = score_query(rows, cos, query, seqs, config=cfg)
        rep = replay(sl, cfg)
        assert sl_rows[np.searchsorted(sl.rows, rep.rows)].tolist() == live.rows.tolist()
        np.testing.assert_allclose(rep.score, live.score)


def test_every_default_comes_from_rerank_config():
    """query, evaluate, tuning and the benchmark read one config: no function
    carries a re-rank default of its own."""
    import inspect

    from coversearch import api
    from coversearch.rerank import cascade, tune as tune_mod

    d = RerankConfig()
    pinned = {"weight": d.weight, "norm": d.norm, "config": None, "fine": d.fine}
    for mod in (cascade, tune_mod):
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__:
                continue
            for p in inspect.signature(fn).parameters.values():
                if p.name in ("weight", "norm") and p.default is not inspect.Parameter.empty:
                    assert p.default == pinned[p.name], f"{mod.__name__}.{name}({p.name}={p.default!r})"
                if isinstance(p.default, AlignConfig):
                    assert p.default in (d.align, d.coarse), f"{mod.__name__}.{name}({p.name})"
                if isinstance(p.default, RerankConfig):
                    assert p.default == d, f"{mod.__name__}.{name}({p.name})"
    for fn in (api.query, api.evaluate):  # None = the index's rerank.json, which defaults to RerankConfig()
        assert inspect.signature(fn).parameters["shortlist"].default is None
    # the documented default K1: 2% of the catalogue, at least 200, at most the catalogue
    assert d.first_stage_k(15_000) == 300 and d.first_stage_k(3_000) == 200 and d.first_stage_k(50) == 50
