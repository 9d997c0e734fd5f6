"""The earlier attempts at this task, side by side with the shipped encoder (issue 14).

Every approach is trained on the same synthetic training works and evaluated
on the same held-out set with the benchmark structure, through the engine's
own code: its vectors are written as an index folder
(:func:`coversearch.index.bundle.write_bundle`) and scored by
``coversearch evaluate``'s function (:func:`coversearch.api.evaluate`); pair
decisions use :mod:`coversearch.evaluate.pairs` (all in-work pairs of the
evaluation set + as many cross-work pairs; AUC from the cosine distance; the
threshold calibrated on the validation works of the training set, balanced
accuracy, then applied to the evaluation pairs).

Approaches (``coversearch.earlier``, ``coversearch.evaluate.baselines``):

a. aggregated features (time means of the chroma features both sets have;
   the synthetic data has no mfcc / madmom) -> linear and deep (…-300-200-
   100-50-20) autoencoders, embedding = the code; K-means on the features
   (purity, ARI, NMI as k grows);
b. Siamese 2-D CNN, contrastive loss on balanced pairs;
c. Siamese residual 1-D CNN, weighted squared-difference head, BCE;
d. (c) + a variational quantum layer (7 qubits, state-vector simulation);
e. mean chroma under 12 shifts, 2D-FTM (PCA fit on training works), and
   exhaustive Qmax alignment on a seeded sample of queries against the whole
   set;
plus the shipped encoder, embedding only and with the alignment re-rank of
its shortlist (``evaluate --rerank`` on a seeded sample of queries).

    nice -n 5 python benchmarks/baselines.py                       # ~42 CPU-min (59 min wall at load 2-4)
    python benchmarks/baselines.py --table                          # README table from the JSON
    python benchmarks/baselines.py --quick --train T --eval E --out x.json   # tests

Writes ``benchmarks/results/baselines.json`` (machine, load, arguments, one
row per approach and seed, and the summary rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, RESULTS, machine, table, write_result  # noqa: E402

DEFAULT_TRAIN = DATA / "train-s1-n1000"
DEFAULT_EVAL = DATA / "benchmark-standard-s2026-h4096-n600"
FEATURES = ("hpcp", "crema", "cens")
METRICS = ("map", "mr1", "p_at_10", "pair_auc", "pair_accuracy")


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ data
class Split:
    """Prepared sequences, work ids and perf ids of one set (or part of one)."""

    def __init__(self, seqs, works, perfs, extra=None):
        self.seqs, self.works, self.perfs = list(seqs), np.asarray(works), list(perfs)
        self.extra = extra or {}  # {feature: sequences} of the other chroma features

    def take(self, rows) -> "Split":
        rows = list(rows)
        return Split([self.seqs[i] for i in rows], self.works[rows], [self.perfs[i] for i in rows],
                     {f: [s[i] for i in rows] for f, s in self.extra.items()})


def load_set(root: Path, features) -> Split:
    from coversearch.api import prepare_data

    cache, _ = prepare_data(root, "hpcp", progress=False, log=log)
    extra = {}
    for f in features:
        if f == "hpcp":
            continue
        c, _ = prepare_data(root, f, progress=False, log=log)
        if c.perf_ids != cache.perf_ids:
            raise SystemExit(f"{root}: {f} and hpcp cover different performances")
        extra[f] = c.sequences()
    return Split(cache.sequences(), cache.work_ids, cache.perf_ids, extra)


def common_features(*roots: Path) -> list[str]:
    """Chroma features present in every root (hpcp always first)."""
    from coversearch.data.layout import find_performances
    from coversearch.errors import DataError

    have = []
    for f in FEATURES:
        try:
            if all(find_performances(r, f) for r in roots):
                have.append(f)
        except DataError:  # "no <feature> files under <root>"
            continue
    if "hpcp" not in have:
        raise SystemExit(f"hpcp missing in one of {', '.join(map(str, roots))}")
    return have


# ------------------------------------------------------------------ scoring
def pair_scores_for(vectors: np.ndarray, works: np.ndarray, seed: int):
    from coversearch.evaluate.pairs import pair_distances, sample_pairs

    i, j, same = sample_pairs(works, seed=seed)
    return -pair_distances(vectors, i, j), same


def pair_row(eval_s, eval_same, val_s, val_same) -> dict:
    """AUC on the evaluation pairs; threshold calibrated on validation pairs, scored on evaluation pairs."""
    from coversearch.evaluate.pairs import calibrate_threshold, rates_at, roc_auc

    row = {"pair_auc": roc_auc(eval_same, eval_s)}
    if val_s is not None:
        cal = calibrate_threshold(val_same, val_s, criterion="balanced_accuracy")
        r = rates_at(eval_same, eval_s, cal["threshold"])
        row |= {"pair_accuracy": r["accuracy"], "pair_f1": r["f1"], "threshold_similarity": cal["threshold"],
                "val_pair_accuracy": cal["accuracy"]}
    return row


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def evaluate_vectors(name: str, eval_vecs, val_vecs, ev: Split, va: Split, work: Path, seed: int = 0) -> dict:
    """Index the evaluation vectors, score them with the engine's evaluate, and the pairs."""
    from coversearch import api
    from coversearch.index.bundle import load_bundle, write_bundle

    idx = work / f"idx-{name}"
    write_bundle(idx, eval_vecs, {"perf_id": ev.perfs, "work_id": ev.works.tolist()},
                 manifest_fields={"model_hash": name, "feature": "hpcp", "source": "baselines.py"})
    m = api.evaluate(idx, progress=False)
    vecs = np.asarray(load_bundle(idx, load_index=False).vectors, np.float32)  # as indexed (unit rows)
    es, esame = pair_scores_for(vecs, ev.works, seed)
    vs, vsame = pair_scores_for(unit(val_vecs), va.works, seed) if val_vecs is not None else (None, None)
    return {k: m[k] for k in ("map", "mr1", "p_at_10", "n_queries", "n_items")} | pair_row(es, esame, vs, vsame)


# ------------------------------------------------------------------ approaches
def run_autoencoders(tr: Split, va: Split, ev: Split, feats, seeds, work, quick) -> list[dict]:
    from coversearch.earlier.aggregate import Standardiser, aggregate_features
    from coversearch.earlier.autoencoder import encode, train_autoencoder

    def agg(s: Split):
        return aggregate_features({f: (s.seqs if f == "hpcp" else s.extra[f]) for f in feats})

    xtr, names = agg(tr)
    std = Standardiser(xtr)
    xtr, xva, xev = std(xtr), std(agg(va)[0]), std(agg(ev)[0])
    rows = []
    for kind in ("linear", "deep"):
        for seed in seeds:
            model, rec = train_autoencoder(xtr, kind=kind, epochs=5 if quick else 200, seed=seed)
            t0 = time.perf_counter()
            e = encode(model, xev)
            emb_s = time.perf_counter() - t0
            r = evaluate_vectors(f"a-{kind}-s{seed}", e, encode(model, xva), ev, va, work, seed)
            rows.append({"approach": f"a. {kind} autoencoder on {len(names)} aggregated features", "key": f"a_{kind}",
                         "seed": seed, "dim": int(e.shape[1]), "train_s": rec["seconds"],
                         "embed_per_s": len(xev) / max(emb_s, 1e-9), "final_mse": rec["loss"][-1], **r})
            log(f"a {kind} seed {seed}: MAP {r['map']:.4f} AUC {r['pair_auc']:.3f} ({rec['seconds']:.0f} s)")
    return rows, {"features": names, "n_features": len(names),
                  "missing": "mfcc_htk (13) and madmom novelty/tempo: not in the synthetic data"}


def run_kmeans_features(ev: Split, feats, tr: Split) -> dict:
    from coversearch.earlier.aggregate import Standardiser, aggregate_features
    from coversearch.report.numbers import kmeans_agreement

    def agg(s: Split):
        return aggregate_features({f: (s.seqs if f == "hpcp" else s.extra[f]) for f in feats})[0]

    std = Standardiser(agg(tr))
    return kmeans_agreement(std(agg(ev)), ev.works)


def run_pairs(arch: str, tr: Split, va: Split, ev: Split, seeds, work, cfg_over: dict, threads: int) -> list[dict]:
    from coversearch.earlier.siamese import PairConfig, embed_fixed, train_pairs

    labels = {"cnn": "b. Siamese 2-D CNN, contrastive", "resnet": "c. Siamese residual 1-D CNN, weighted-diff BCE",
              "resnet_quantum": "d. (c) + variational quantum layer (7 qubits, simulated)"}
    rows = []
    for seed in seeds:
        cfg = PairConfig(arch=arch, seed=seed, **cfg_over)
        model, rec = train_pairs(tr.seqs, tr.works, cfg, threads=threads, log=log)
        t0 = time.perf_counter()
        e = model.index_vectors(embed_fixed(model, ev.seqs))
        emb_s = time.perf_counter() - t0
        v = model.index_vectors(embed_fixed(model, va.seqs))
        r = evaluate_vectors(f"{arch}-s{seed}", e, v, ev, va, work, seed)
        fit = fit_check(model, tr, seed)
        n = max(1, min(50, len(rec["loss"]) // 4))
        rows.append({"approach": labels[arch], "key": arch, "seed": seed, "dim": int(e.shape[1]),
                     "train_s": rec["seconds"], "embed_per_s": len(ev.seqs) / max(emb_s, 1e-9),
                     "first_loss": float(np.mean(rec["loss"][:n])), "final_loss": float(np.mean(rec["loss"][-n:])),
                     "chance_loss": 0.6931 if arch != "cnn" else None, **fit, "config": cfg.to_dict(), **r})
        log(f"{arch} seed {seed}: MAP {r['map']:.4f} AUC {r['pair_auc']:.3f} (training pairs: AUC "
            f"{fit['train_pair_auc']:.3f}; loss {rows[-1]['first_loss']:.3f} -> {rows[-1]['final_loss']:.3f}; "
            f"{rec['seconds']:.0f} s train)")
    return rows


def fit_check(model, tr: Split, seed: int) -> dict:
    """Does a pair model separate its own training pairs? (centre windows, no augmentation)

    ``train_pair_auc``: AUC of the indexed vectors' cosine on the training works'
    in-work pairs (up to 5,000) and as many cross-work pairs; for (c)/(d) also
    ``train_pair_auc_head``: of the trained head's own logit on the same pairs.
    Chance is 0.5: a model near it on its training pairs has not learned its task
    (an optimisation or budget problem), one well above it that stays near chance
    on held-out works does not generalise.
    """
    import torch

    from coversearch.earlier.siamese import embed_fixed
    from coversearch.evaluate.pairs import roc_auc, sample_pairs

    i, j, same = sample_pairs(tr.works, max_positive=5000, seed=seed + 100)
    e = embed_fixed(model, tr.seqs)
    out = {"train_pair_auc": roc_auc(same, -np.linalg.norm(unit(model.index_vectors(e))[i]
                                                             - unit(model.index_vectors(e))[j], axis=1)),
           "train_pairs": int(len(i))}
    if model.head is not None:
        with torch.no_grad():
            out["train_pair_auc_head"] = roc_auc(same, model.head(torch.from_numpy(e[i]), torch.from_numpy(e[j])).numpy())
    return out


def _score_pairs_from(scorer, works, seed):
    """Pair scores from a (B, N) block scorer over sampled pairs (rows grouped by i)."""
    from coversearch.evaluate.pairs import sample_pairs

    i, j, same = sample_pairs(works, seed=seed)
    s = np.empty(len(i))
    for a in np.unique(i):
        sel = np.flatnonzero(i == a)
        s[sel] = scorer(int(a), j[sel])
    return s, same


def run_nonlearned(tr: Split, va: Split, ev: Split, seed: int, quick: bool) -> list[dict]:
    from coversearch.evaluate.baselines import (evaluate_ftm2d, evaluate_mean_chroma, ftm2d_features, fit_pca,
                                                mean_chroma_embeddings)

    rows = []
    # mean chroma, best of 12 shifts (its own scorer: not a single-vector cosine)
    t0 = time.perf_counter()
    m = evaluate_mean_chroma(ev.seqs, ev.works)
    secs = time.perf_counter() - t0

    def mc_scores(s: Split):
        e = mean_chroma_embeddings(s.seqs)
        shifted = np.stack([np.roll(e, k, axis=1) for k in range(12)])  # (12, N, 12)
        return _score_pairs_from(lambda a, js: (shifted[:, js] @ e[a]).max(axis=0), s.works, seed)

    r = pair_row(*mc_scores(ev), *mc_scores(va))
    rows.append({"approach": "e. mean chroma, best of 12 shifts", "key": "mean_chroma", "seed": None, "dim": 12,
                 "train_s": 0.0, "embed_per_s": len(ev.seqs) / max(secs, 1e-9),
                 **{k: m[k] for k in ("map", "mr1", "p_at_10", "n_queries", "n_items")}, **r})
    log(f"mean chroma: MAP {m['map']:.4f}")
    # 2D-FTM, PCA fit on (a sample of) the training works, as the paper fits it on training data
    rng = np.random.default_rng(seed)
    fit_rows = rng.choice(len(tr.seqs), min(len(tr.seqs), 60 if quick else 1500), replace=False)
    t0 = time.perf_counter()
    mean, comps = fit_pca(ftm2d_features([tr.seqs[i] for i in fit_rows]))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = evaluate_ftm2d(ev.seqs, ev.works, fit_seqs=[tr.seqs[i] for i in fit_rows])
    secs = time.perf_counter() - t0

    def ftm_scores(s: Split):
        e = (ftm2d_features(s.seqs) - mean) @ comps
        return _score_pairs_from(lambda a, js: -np.linalg.norm(e[js] - e[a], axis=1), s.works, seed)

    r = pair_row(*ftm_scores(ev), *ftm_scores(va))
    rows.append({"approach": "e. 2D-FTM (PCA 50 fit on training works)", "key": "ftm2d", "seed": None,
                 "dim": int(comps.shape[1]), "train_s": train_s, "embed_per_s": len(ev.seqs) / max(secs, 1e-9),
                 **{k: m[k] for k in ("map", "mr1", "p_at_10", "n_queries", "n_items")}, **r})
    log(f"2D-FTM: MAP {m['map']:.4f}")
    return rows


def run_alignment(ev: Split, n_queries: int, seed: int, jobs: int) -> dict:
    """Exhaustive Qmax alignment of a seeded query sample against every item (acoss normalisation)."""
    from coversearch.align import AlignConfig, qmax_scores_one_to_many, to_alignment_rate
    from coversearch.evaluate.pairs import roc_auc
    from coversearch.evaluate.retrieval import metrics_from_scores

    cfg = AlignConfig()
    _, inv, counts = np.unique(ev.works, return_inverse=True, return_counts=True)
    cand = np.flatnonzero(counts[inv] >= 2)
    q = np.sort(np.random.default_rng(seed).choice(cand, min(n_queries, len(cand)), replace=False))
    t_align = np.array([to_alignment_rate(s, cfg.downsample).shape[0] for s in ev.seqs], np.float64)
    qmax_scores_one_to_many(ev.seqs[0], ev.seqs[:2], config=cfg)  # compile outside the timing
    scores = np.zeros((len(q), len(ev.seqs)))
    t0 = time.perf_counter()
    for n, a in enumerate(q):
        scores[n] = qmax_scores_one_to_many(ev.seqs[a], ev.seqs, config=cfg, jobs=jobs) / np.sqrt(t_align)
        if n % 10 == 0:
            log(f"alignment: query {n + 1}/{len(q)} ({time.perf_counter() - t0:.0f} s)")
    secs = time.perf_counter() - t0
    m = metrics_from_scores(scores, ev.works[q], ev.works, query_rows=q)
    same = ev.works[q][:, None] == ev.works[None, :]
    keep = np.ones_like(same)
    keep[np.arange(len(q)), q] = False
    return {"approach": f"e. exhaustive Qmax alignment ({len(q)} sampled queries x all items)", "key": "alignment",
            "seed": seed, "dim": None, "train_s": 0.0, "seconds_per_query": secs / max(1, len(q)),
            "map": m["map"], "mr1": m["mr1"], "p_at_10": m["p_at_10"], "n_queries": m["n_queries"],
            "n_items": m["n_items"], "pair_auc": roc_auc(same[keep], scores[keep])}


def run_encoder(ev_root: Path, ev: Split, work: Path, rerank_queries: int, jobs: int) -> list[dict]:
    """The shipped encoder through ``build-index`` and ``evaluate`` (with and without the re-rank)."""
    from coversearch import api
    from coversearch.model.checkpoint import default_model_path, read_record

    idx = work / "idx-encoder"
    s = api.build_index(ev_root, index_dir=idx, progress=False, log=log)
    m = api.evaluate(idx, progress=False)
    rec = read_record(default_model_path())
    train_s = float(sum(h.get("seconds", 0) for h in rec.get("history", [])))
    base = {"dim": int(s["manifest"].dim), "train_s": train_s,
            "train_s_note": "from the shipped record (5,000 works, 40 epochs)",
            "embed_per_s": s["count"] / max(s["seconds"]["embed"], 1e-9), "model_hash": s["manifest"].model_hash}
    rows = [{"approach": "coversearch encoder (shipped), embedding only", "key": "encoder", "seed": None, **base,
             **{k: m[k] for k in ("map", "mr1", "p_at_10", "n_queries", "n_items")}}]
    log(f"encoder: MAP {m['map']:.4f}")
    if rerank_queries:
        m = api.evaluate(idx, rerank=True, max_queries=rerank_queries, jobs=jobs, progress=False)
        rows.append({"approach": f"coversearch encoder + alignment re-rank ({m['n_queries']} sampled queries)",
                     "key": "encoder_rerank", "seed": None, **base,
                     **{k: m[k] for k in ("map", "mr1", "p_at_10", "n_queries", "n_items")},
                     "seconds_per_query": m.get("seconds_per_query"), "shortlist": m.get("shortlist")})
        # the same sample without re-rank, so the pair of rows compares like with like
        m0 = api.evaluate(idx, max_queries=rerank_queries, progress=False)
        rows[-1]["embedding_only_same_sample"] = {k: m0[k] for k in ("map", "mr1", "p_at_10")}
        log(f"encoder + re-rank: MAP {m['map']:.4f} (same sample without: {m0['map']:.4f})")
    return rows


def encoder_pairs(va: Split, ev: Split, work: Path, seed: int = 0) -> dict:
    """Pair AUC of the encoder's indexed vectors; threshold calibrated on the validation works."""
    from coversearch.index.bundle import load_bundle
    from coversearch.model.checkpoint import load_checkpoint
    from coversearch.model.embed import embed_sequences

    vecs = np.asarray(load_bundle(work / "idx-encoder", load_index=False).vectors, np.float32)
    net, _ = load_checkpoint(None)
    es, esame = pair_scores_for(vecs, ev.works, seed)
    vs, vsame = pair_scores_for(embed_sequences(net, va.seqs), va.works, seed)
    return pair_row(es, esame, vs, vsame)


# ------------------------------------------------------------------ summary
def summarise(rows: list[dict]) -> list[dict]:
    """One row per approach: mean and spread (sample std) over seeds."""
    out = []
    for key in dict.fromkeys(r["key"] for r in rows):
        rs = [r for r in rows if r["key"] == key]
        s = {"approach": rs[0]["approach"], "key": key, "n_seeds": len(rs), "dim": rs[0].get("dim")}
        for k in METRICS + ("train_s", "embed_per_s", "seconds_per_query"):
            vals = [r[k] for r in rs if r.get(k) is not None]
            if vals:
                s[k] = float(np.mean(vals))
                if len(vals) > 1:
                    s[f"{k}_std"] = float(np.std(vals, ddof=1))
        out.append(s)
    return out


def markdown(doc: dict) -> str:
    def f(s, k, fmt):
        if k not in s:
            return "—"
        v = fmt.format(s[k])
        return v + (" ± " + fmt.format(s[f"{k}_std"]) if f"{k}_std" in s else "")

    lines = ["| approach | seeds | MAP | MR1 | P@10 | pair AUC | calibrated accuracy | dim | training | embeddings/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in doc["summary"]:
        tr = s.get("train_s")
        train = "—" if tr is None else ("none" if tr == 0 else (f"{tr / 60:.1f} min" if tr >= 60 else f"{tr:.1f} s"))
        if s["key"] == "encoder_rerank":
            emb = f"{1 / s['seconds_per_query']:.1f} queries/s" if s.get("seconds_per_query") else "—"
        elif s["key"] == "alignment":
            emb = f"{1 / s['seconds_per_query']:.2f} queries/s" if s.get("seconds_per_query") else "—"
        else:
            emb = f"{s['embed_per_s']:,.0f}" if s.get("embed_per_s") else "—"  # mean over seeds
        lines.append(f"| {s['approach']} | {s['n_seeds']} | {f(s, 'map', '{:.3f}')} | {f(s, 'mr1', '{:.1f}')} | "
                     f"{f(s, 'p_at_10', '{:.3f}')} | {f(s, 'pair_auc', '{:.3f}')} | {f(s, 'pair_accuracy', '{:.3f}')} | "
                     f"{s.get('dim') or '—'} | {train} | {emb} |")
    st = doc.get("step_timing") or {}
    if st:
        lines += ["", "| step | wall | CPU (all threads) | CPU / wall | load average before -> after |", "|---|---|---|---|---|"]
        for k, t in st.items():
            if "wall_s" not in t:
                continue
            lb, la = t.get("load_before"), t.get("load_after")
            load = f"{lb[0]} -> {la[0]}" if lb and la else "—"
            lines.append(f"| {k}{' (reused)' if t.get('reused') else ''} | {t['wall_s'] / 60:.1f} min | "
                         f"{t['cpu_s'] / 60:.1f} min | {t['cpu_s'] / max(t['wall_s'], 1e-9):.2f} | {load} |")
        tw = sum(t.get("wall_s", 0) for t in st.values())
        tc = sum(t.get("cpu_s", 0) for t in st.values())
        lines.append(f"| **all steps** | **{tw / 60:.1f} min** | **{tc / 60:.1f} min** | {tc / max(tw, 1e-9):.2f} | |")
    m = doc.get("machine", {})
    state = "complete run" if doc.get("complete") else "PARTIAL run: only the approaches above finished"
    counts = (f"{doc['n_train']} training / {doc['n_val']} validation / {doc['n_eval']} evaluation performances; "
              if doc.get("n_train") else "")
    wall = (f"; wall {doc['wall_seconds'] / 60:.0f} min" if doc.get("wall_seconds") and not st else
            "; steps marked reused were computed by an earlier invocation on the same --work folder" if st else "")
    missing = f"; not finished: {', '.join(doc['missing_steps'])}" if doc.get("missing_steps") else ""
    lines += ["", f"({state}; {counts}load average at start {m.get('loadavg_at_start')}, at the last write "
                  f"{doc.get('loadavg_now')}{wall}{missing})"]
    return "\n".join(lines)


STEP_ORDER = ("encoder", "encoder_pairs", "a", "kmeans", "e", "c", "d", "b", "alignment")
# the settings that shape each step's rows (beside the data, which shape all): --resume reuses a
# finished step when these match, so changing the pair budget does not redo the encoder or (a)
STEP_SETTINGS = {"encoder": ("rerank_queries",), "encoder_pairs": (), "a": ("seeds",), "kmeans": (), "e": (),
                 "c": ("pair_seeds", "steps", "length"), "d": ("pair_seeds", "steps", "length"),
                 "b": ("pair_seeds", "steps", "length"), "alignment": ("align_queries",)}
COMMON_SETTINGS = ("train", "eval", "quick")


def step_finger(finger: dict, key: str) -> dict:
    """The part of a run's settings that shapes step ``key``."""
    return {k: finger.get(k) for k in COMMON_SETTINGS + STEP_SETTINGS[key]}


def collect(a, out: Path) -> None:
    """The result JSON from the step files of a run (also of parallel runs sharing --work)."""
    from coversearch._io import write_json_atomic

    part = {p.stem: json.loads(p.read_text()) for p in (a.work / "partial").glob("*.json")}
    rows, extra, fingers, settings = [], {"step_timing": {k: part[k]["timing"] for k in STEP_ORDER
                                                          if "timing" in part.get(k, {})}}, set(), {}
    for key in STEP_ORDER:
        if key not in part:
            continue
        fingers.add(json.dumps({k: part[key]["finger"].get(k) for k in COMMON_SETTINGS}, sort_keys=True))
        settings |= step_finger(part[key]["finger"], key)
        v = part[key]["value"]
        if key == "encoder":
            rows += v
        elif key == "encoder_pairs":
            if rows and rows[0]["key"] == "encoder":
                rows[0] |= v
        elif key == "a":
            rows += v[0]
            extra["aggregated_features"] = v[1]
        elif key == "kmeans":
            extra["kmeans_aggregated_features"] = v
        elif key == "alignment":
            rows.append(v)
        else:
            rows += v
    if len(fingers) > 1:
        raise SystemExit(f"step files under {a.work} come from runs with different settings")
    finger = settings
    missing = [k for k in STEP_ORDER if k not in part]
    write_json_atomic(out, {"command": " ".join(["baselines.py"] + sys.argv[1:]), "settings": finger,
                            "machine": machine(), "complete": not missing, "missing_steps": missing,
                            "train": finger.get("train"), "eval": finger.get("eval"), "rows": rows,
                            "summary": summarise(rows), **extra, "loadavg_now": [round(x, 2) for x in os.getloadavg()]})


def finish(a, rows, extra, feats, tr, va, ev, t_start, *, complete: bool) -> dict:
    """Write the result JSON (also mid-run, with ``complete: false``)."""
    doc = {"complete": complete, "train": str(a.train), "eval": str(a.eval), "features": feats,
           "n_train": len(tr.seqs), "n_val": len(va.seqs), "n_eval": len(ev.seqs), "rows": list(rows),
           "summary": summarise(rows), **extra, "loadavg_now": [round(x, 2) for x in os.getloadavg()]}
    secs = time.perf_counter() - t_start
    args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
    if a.out:
        from coversearch._io import write_json_atomic

        write_json_atomic(a.out, {"command": " ".join(["baselines.py"] + sys.argv[1:]), "args": args,
                                  "machine": machine(), "wall_seconds": round(secs, 1), **doc})
    else:
        write_result("baselines", doc, args=args, seconds=secs)
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Earlier attempts as baselines, through the engine's index and metrics.")
    ap.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="training works (a Da-TACOS root)")
    ap.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="held-out evaluation set (a Da-TACOS root)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the autoencoders")
    ap.add_argument("--pair-seeds", type=int, default=3, help="seeds of (b), (c), (d)")
    ap.add_argument("--steps", type=int, default=1200, help="optimiser steps of (b), (c), (d)")
    ap.add_argument("--length", type=int, default=256, help="frames per input of (b), (c), (d) (0.232 s each)")
    ap.add_argument("--align-queries", type=int, default=20)
    ap.add_argument("--rerank-queries", type=int, default=200)
    ap.add_argument("--approaches", default="encoder,a,b,c,d,e,align",
                    help="comma-separated subset (encoder and align need only the evaluation set)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads and alignment jobs (2 threads thrash on a shared machine: 8x slower per step)")
    ap.add_argument("--work", type=Path, default=DATA / "baselines-work-n1000", help="scratch: index folders")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default benchmarks/results/baselines.json)")
    ap.add_argument("--quick", action="store_true", help="tiny budgets (tests)")
    ap.add_argument("--collect", action="store_true",
                    help="assemble the result JSON from the finished steps under --work (no computing), print the table")
    ap.add_argument("--resume", action="store_true", help="reuse finished steps of an interrupted run (same settings)")
    ap.add_argument("--table", action="store_true", help="print the README table from the result JSON and exit")
    a = ap.parse_args(argv)
    out = a.out or RESULTS / ("baselines.quick.json" if a.quick else "baselines.json")
    if a.collect:
        collect(a, out)
    if a.table or a.collect:
        print(markdown(json.loads(out.read_text())))
        return 0
    import torch

    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    which = set(a.approaches.split(","))
    if a.quick:
        a.steps, a.length, a.align_queries, a.rerank_queries = 3, 64, 2, 0
        a.seeds = a.pair_seeds = 1
    feats = common_features(a.train, a.eval) if which & {"a", "b", "c", "d", "e"} else ["hpcp"]
    log(f"features in both sets: {feats}; load {os.getloadavg()}")
    w0, c0 = time.perf_counter(), cpu_seconds()
    ev = load_set(a.eval, feats)
    need_train = bool(which & {"a", "b", "c", "d", "e"})
    if need_train:  # `--approaches encoder,align` needs only the evaluation set
        from coversearch.model.train import split_works

        tr_all = load_set(a.train, feats)
        tr_rows, va_rows = split_works(list(tr_all.works), 0.1, 0)
        tr, va = tr_all.take(tr_rows), tr_all.take(va_rows)
    else:
        tr = va = Split([], [], [])
    load_t = {"wall_s": round(time.perf_counter() - w0, 1), "cpu_s": round(cpu_seconds() - c0, 1)}
    log(f"train {len(tr.seqs)} performances, validation {len(va.seqs)} ({len(set(va.works.tolist()))} works), "
        f"evaluation {len(ev.seqs)}")
    a.work.mkdir(parents=True, exist_ok=True)
    rows, extra = [], {}
    timing = extra["step_timing"] = {"load_data": load_t}
    seeds, pseeds = list(range(a.seeds)), list(range(a.pair_seeds))
    pcfg = {"steps": a.steps, "length": a.length}
    # each step's rows are kept under --work, keyed by the settings that shape them, so an
    # interrupted run resumes (--resume) without redoing finished approaches
    finger = {"train": str(a.train.resolve()), "eval": str(a.eval.resolve()), "seeds": a.seeds,
              "pair_seeds": a.pair_seeds, "steps": a.steps, "length": a.length, "align_queries": a.align_queries,
              "rerank_queries": a.rerank_queries, "quick": a.quick}

    def step(key, fn):
        from coversearch._io import write_json_atomic

        if rows:  # the result file always holds what is finished so far
            finish(a, rows, extra, feats, tr, va, ev, t_start, complete=False)

        path = a.work / "partial" / f"{key}.json"
        if a.resume and path.is_file():
            saved = json.loads(path.read_text())
            if step_finger(saved.get("finger", {}), key) == step_finger(finger, key):
                log(f"{key}: reusing {path}")
                timing[key] = saved.get("timing", {}) | {"reused": True}
                return saved["value"]
        t = {"started": time.strftime("%H:%M:%S"), "threads": a.threads, "load_before": [round(x, 2) for x in os.getloadavg()]}
        w0, c0 = time.perf_counter(), cpu_seconds()
        value = fn()
        t |= {"wall_s": round(time.perf_counter() - w0, 1), "cpu_s": round(cpu_seconds() - c0, 1),
              "load_after": [round(x, 2) for x in os.getloadavg()]}
        timing[key] = t
        log(f"{key}: {t['wall_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU, load {t['load_before'][0]} -> "
            f"{t['load_after'][0]}")
        write_json_atomic(path, {"finger": finger, "value": value, "timing": t})
        return value

    if "encoder" in which:
        enc = step("encoder", lambda: run_encoder(a.eval, ev, a.work, a.rerank_queries, a.threads))
        if need_train:
            enc[0] |= step("encoder_pairs", lambda: encoder_pairs(va, ev, a.work))
        rows += enc
    if "a" in which:
        r, extra["aggregated_features"] = step("a", lambda: run_autoencoders(tr, va, ev, feats, seeds, a.work, a.quick))
        rows += r
        extra["kmeans_aggregated_features"] = step("kmeans", lambda: run_kmeans_features(ev, feats, tr))
    if "e" in which:
        rows += step("e", lambda: run_nonlearned(tr, va, ev, 0, a.quick))
    for key, arch in (("c", "resnet"), ("d", "resnet_quantum"), ("b", "cnn")):  # (c) and (d) are compared
        if key in which:
            rows += step(key, lambda arch=arch: run_pairs(arch, tr, va, ev, pseeds, a.work, pcfg, a.threads))
    if "align" in which and a.align_queries:
        rows.append(step("alignment", lambda: run_alignment(ev, a.align_queries, 0, a.threads)))
    doc = finish(a, rows, extra, feats, tr, va, ev, t_start,
                 complete=which >= {"encoder", "a", "b", "c", "d", "e", "align"})
    print(table(doc["summary"], ["approach", "n_seeds", "map", "mr1", "p_at_10", "pair_auc", "pair_accuracy",
                                 "dim", "train_s", "embed_per_s"]))
    log(f"done in {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
