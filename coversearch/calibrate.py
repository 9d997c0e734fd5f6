"""Offline: calibrate the verdict of ``coversearch compare`` on validation works.

The validation works (a Da-TACOS root the model never saw: e.g. a synthetic
``train``-profile set with a seed used neither for training nor for
evaluation) are split by work, seeded, into a calibration part and a
held-out test part. On the calibration part every in-work pair (up to a cap)
and as many random cross-work pairs are scored exactly as ``compare`` scores
a pair (:func:`coversearch.compare.pair_scores`); the threshold on the fused
score (and, for reference, on the cosine distance) is chosen by
:func:`coversearch.evaluate.pairs.calibrate_threshold`, and a logistic slope
around it gives the confidence. The error rates are then measured on the
test part, on each test item's nearest other-work neighbour (the hard
negatives a retrieval would propose), and optionally on a second held-out
set (e.g. the ``wide`` variation). Everything goes into
``NAME.calibration.json`` beside the model, written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from coversearch._io import write_json_atomic
from coversearch.compare import CALIBRATION_FORMAT, calibration_path, model_file_and_hash, pair_scores
from coversearch.errors import ConfigError, DataError
from coversearch.evaluate.pairs import calibrate_threshold, fit_logistic, rates_at, sample_pairs
from coversearch.rerank import RerankConfig

SYNTH_SUMMARY = ".coversearch-synth.json"


def describe_data(root: str | Path) -> dict:
    """Where a data set came from: path, and the generator's summary if it is synthetic."""
    root = Path(root)
    out = {"path": str(root.resolve())}
    summary = root / SYNTH_SUMMARY
    if summary.is_file():
        s = json.loads(summary.read_text())
        keep = ("profile", "seed", "variation", "n_works", "n_performances", "hop", "generator_version", "features")
        out["synthetic"] = {k: s.get(k) for k in keep if k in s}
        v = out["synthetic"]
        out["description"] = (f"synthetic '{v.get('profile')}'-profile works, seed {v.get('seed')}, "
                              f"'{v.get('variation', 'standard')}' variation, hop {v.get('hop')}")
    else:
        out["description"] = f"the works under {root}"
    return out


def _embed_set(net, root, feature, *, jobs, progress, log):
    from coversearch.features.cache import build_cache
    from coversearch.model.embed import embed_sequences

    cache, report = build_cache(root, feature, jobs=jobs, progress=progress)
    if report.bad:
        raise DataError(f"{root}: {len(report.bad)} unreadable file(s), e.g. {report.bad[0][1]}")
    vectors = embed_sequences(net, cache.sequences(), progress=progress)
    return cache, vectors, np.asarray(cache.work_ids)


def score_pairs(cache, vectors, i, j, *, weight, norm, align, progress=False, desc="aligning") -> dict:
    """Cosine distance and fused score of each pair (rows of ``cache``/``vectors``).

    Returns:
        {"cosine_distance": (M,), "fused": (M,)} float64.
    """
    from tqdm import tqdm

    cos = np.einsum("md,md->m", vectors[i].astype(np.float64), vectors[j].astype(np.float64))
    dist = np.empty(len(i))
    fused = np.empty(len(i))
    for m in tqdm(range(len(i)), desc=desc, unit="pair", disable=not progress):
        s = pair_scores(float(cos[m]), cache.sequence(int(i[m])), cache.sequence(int(j[m])),
                        weight=weight, norm=norm, align=align)
        dist[m], fused[m] = s["cosine_distance"], s["fused"]
    return {"cosine_distance": dist, "fused": fused}


def nearest_other_work(vectors, labels, rows) -> tuple[np.ndarray, np.ndarray]:
    """For each item of ``rows``, its cosine-nearest item of another work among ``rows``.

    Returns:
        (i, j) int64 pair rows.
    """
    rows = np.asarray(rows, np.int64)
    v = vectors[rows].astype(np.float64)
    sims = v @ v.T
    same = labels[rows][:, None] == labels[rows][None, :]
    sims[same] = -np.inf
    best = np.argmax(sims, axis=1)
    ok = np.isfinite(sims[np.arange(len(rows)), best])
    return rows[ok], rows[best[ok]]


def _split_works(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    works = np.unique(labels)
    rng = np.random.default_rng(seed)
    test_works = set(rng.choice(works, int(round(len(works) * test_fraction)), replace=False).tolist())
    is_test = np.array([w in test_works for w in labels])
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _pairs_within(rows, labels, *, max_positive, seed):
    i, j, same = sample_pairs(labels[rows], max_positive=max_positive, seed=seed)
    return rows[i], rows[j], same


def calibrate(
    val_data: str | Path,
    *,
    model: str | Path | None = None,
    wide_data: str | Path | None = None,
    out: str | Path | None = None,
    test_fraction: float = 1 / 3,
    max_positive: int = 1500,
    seed: int = 0,
    criterion: str = "balanced_accuracy",
    rerank: RerankConfig | None = None,
    jobs: int = 1,
    progress: bool = True,
    command: str | None = None,
    log=print,
) -> dict:
    """Calibrate ``compare``'s threshold for a model and save it beside the model.

    Args:
        val_data: validation works (never seen in training, not an evaluation set).
        model: checkpoint; None = the shipped encoder.
        wide_data: optional second held-out set (all of it is test data).
        out: where to write the JSON (default ``NAME.calibration.json`` beside the model).
        test_fraction: share of the validation works held out for the test rates.
        max_positive: cap on in-work pairs per part (cross-work pairs: as many).
        seed: split and pair sampling seed.
        criterion: threshold criterion (:data:`coversearch.evaluate.pairs.CRITERIA`).
        rerank: fusion settings (default: the re-rank defaults, :class:`RerankConfig`);
            recorded as the file's ``score``, which ``compare`` applies as is.
        jobs: reader processes for the prepared caches.
        command: the command line that regenerates this file (recorded).

    Returns:
        The record written.
    """
    from coversearch.model.checkpoint import load_checkpoint

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    if max_positive < 1:
        raise ConfigError(f"--max-pairs must be >= 1, got {max_positive}")
    t0 = time.perf_counter()
    rr = rerank or RerankConfig()
    mpath, mhash = model_file_and_hash(model)
    net, info = load_checkpoint(mpath)
    feature = info["config"].feature
    kw = dict(weight=rr.weight, norm=rr.norm, align=rr.align, progress=progress)

    cache, vectors, labels = _embed_set(net, val_data, feature, jobs=jobs, progress=progress, log=log)
    cal_rows, test_rows = _split_works(labels, test_fraction, seed)
    ci, cj, cs = _pairs_within(cal_rows, labels, max_positive=max_positive, seed=seed)
    log(f"calibration: {len(np.unique(labels[cal_rows]))} works, {int(cs.sum())} version + {int((~cs).sum())} other pairs")
    sc = score_pairs(cache, vectors, ci, cj, desc="calibration pairs", **kw)
    fused_cal = calibrate_threshold(cs, sc["fused"], criterion=criterion)
    cos_cal = calibrate_threshold(cs, sc["cosine_distance"], greater_is_positive=False, criterion=criterion)
    f_slope, _ = fit_logistic(cs, sc["fused"], center=fused_cal["threshold"])
    c_slope, _ = fit_logistic(cs, -sc["cosine_distance"], center=-cos_cal["threshold"])

    def rates(same, s):
        return {"fused": rates_at(same, s["fused"], fused_cal["threshold"]),
                "cosine": rates_at(same, s["cosine_distance"], cos_cal["threshold"], greater_is_positive=False)}

    ti, tj, ts = _pairs_within(test_rows, labels, max_positive=max_positive, seed=seed + 1)
    test = rates(ts, score_pairs(cache, vectors, ti, tj, desc="test pairs", **kw))
    hi, hj = nearest_other_work(vectors, labels, test_rows)
    hard = rates(np.zeros(len(hi), bool), score_pairs(cache, vectors, hi, hj, desc="nearest other-work pairs", **kw))
    wide, wide_desc = None, None
    if wide_data is not None:
        wcache, wvec, wlab = _embed_set(net, wide_data, feature, jobs=jobs, progress=progress, log=log)
        wi, wj, ws = sample_pairs(wlab, max_positive=max_positive, seed=seed + 2)
        wide = rates(ws, score_pairs(wcache, wvec, wi, wj, desc="wide pairs", **kw))
        wide_desc = describe_data(wide_data)

    def block(key, cal, slope):
        d = {"threshold": cal["threshold"], "slope": slope, "calibration": cal,
             "test": test[key], "test_nearest_other_work": hard[key]}
        if wide is not None:
            d["wide"] = wide[key]
        return d

    record = {
        "format_version": CALIBRATION_FORMAT,
        "model_hash": mhash,
        "model_name": mpath.name,
        "seed": seed,
        "criterion": criterion,
        "score": {"weight": rr.weight, "norm": rr.norm, "align": rr.to_dict()["align"]},
        "fused": block("fused", fused_cal, f_slope),
        "cosine": block("cosine", cos_cal, c_slope),
        "data": {"validation": describe_data(val_data), **({"wide": wide_desc} if wide_desc else {})},
        "split": {"by": "work", "seed": seed, "test_fraction": test_fraction,
                  "calibration_works": int(len(np.unique(labels[cal_rows]))),
                  "test_works": int(len(np.unique(labels[test_rows]))),
                  "max_version_pairs": max_positive,
                  "cross_work_pairs": "uniform random, as many as version pairs"},
        "confidence": "logistic(slope * (fused - threshold)) fitted on the calibration pairs (1:1 prior)",
        "command": command,
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json_atomic(Path(out) if out else calibration_path(mpath), record)
    return record
