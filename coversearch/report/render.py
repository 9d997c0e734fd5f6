"""Draw the report: matplotlib figures (embedded as base64 PNG) and HTML tables
in one self-contained page. Takes the dict built by
:func:`coversearch.report.build.report_numbers` and computes nothing itself
beyond layout.

The page has no script and no external resource, so it opens anywhere
(a browser, a mail attachment) and renders the same.
"""

from __future__ import annotations

import base64
import html
import io

__all__ = ["render_html", "figures"]

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_rank_hist(r: dict) -> str:
    plt = _plt()
    h = r["rank_histogram"]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.bar(range(len(h)), [b["count"] for b in h], color=PALETTE[0])
    ax.set_xticks(range(len(h)), [b["bin"] for b in h], rotation=45, fontsize=8)
    ax.set_xlabel("rank of the first other version")
    ax.set_ylabel("queries")
    ax.set_title(f"First version's rank (MR1 {r['metrics']['mr1']:.2f})", fontsize=10)
    return _png(fig)


def _fig_map_by_size(r: dict) -> str:
    plt = _plt()
    rows = r["map_by_clique_size"]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    xs = range(len(rows))
    ax.bar(xs, [x["map"] for x in rows], color=PALETTE[2])
    for i, x in enumerate(rows):
        ax.text(i, x["map"], f"{x['n_works']} works", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(list(xs), [str(x["size"]) for x in rows], fontsize=8)
    ax.set_xlabel("versions of the work in the index (clique size)")
    ax.set_ylabel("MAP")
    ax.set_ylim(0, 1.05)
    ax.set_title("MAP by clique size", fontsize=10)
    return _png(fig)


def _fig_map2d(e: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    if e["context"]:
        cx, cy = zip(*e["context"])
        ax.scatter(cx, cy, s=4, c="#cccccc", label="other items", linewidths=0)
    for i, w in enumerate(e["works"]):
        pts = [(p["x"], p["y"]) for p in e["points"] if p["work_id"] == w]
        xs, ys = zip(*pts)
        ax.scatter(xs, ys, s=22, color=PALETTE[i % len(PALETTE)], label=w, edgecolors="black", linewidths=0.3)
    ax.set_xlabel(f"PC 1 ({100 * e['explained'][0]:.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * e['explained'][1]:.1f}%)")
    ax.set_title(f"Embeddings, PCA: the {len(e['works'])} largest works", fontsize=10)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _png(fig)


def _fig_kmeans(k: dict) -> str:
    plt = _plt()
    rows = k["rows"]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ks = [r["k"] for r in rows]
    for key, c in (("ari", PALETTE[0]), ("nmi", PALETTE[1]), ("purity", PALETTE[2])):
        ax.plot(ks, [r[key] for r in rows], marker="o", ms=3, color=c, label=key.upper() if key != "purity" else "purity")
    ax.axvline(k["n_works"], color="grey", ls=":", lw=1)
    ax.text(k["n_works"], 1.0, " true number of works", fontsize=7, color="grey", va="top")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (clusters)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"K-means vs work labels ({k['n_items']} items, {k['n_works']} works)", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def _fig_training(t: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.plot(t["epochs"], t["loss"], color=PALETTE[0], label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color=PALETTE[0])
    vm = [(e, v) for e, v in zip(t["epochs"], t["val_map"]) if v is not None]
    if vm:
        ax2 = ax.twinx()
        ax2.plot(*zip(*vm), color=PALETTE[3], marker="o", ms=2, label="validation MAP")
        ax2.set_ylabel("validation MAP", color=PALETTE[3])
        b = t.get("best") or {}
        if "epoch" in b:
            ax2.axvline(b["epoch"], color="grey", ls=":", lw=1)
    ax.set_title(f"Training of model {t['model_hash'][:8]} (kept epoch {t.get('best', {}).get('epoch', '?')})",
                 fontsize=10)
    return _png(fig)


def _fig_distances(p: dict) -> str:
    plt = _plt()
    d = p["distances"]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    edges = d["edges"]
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    width = edges[1] - edges[0]
    ax.bar(centres, d["in_work"], width=width, alpha=0.6, color=PALETTE[2], label="same work")
    ax.bar(centres, d["cross_work"], width=width, alpha=0.6, color=PALETTE[3], label="different works")
    thr = (p.get("model_threshold") or p.get("threshold") or {}).get("distance")
    if thr is not None:
        ax.axvline(thr, color="black", ls="--", lw=1, label=f"threshold {thr:.3f}")
    ax.set_xlabel("cosine distance")
    ax.set_ylabel("share of pairs (density)")
    ax.set_title(f"Pair distances (overlap {d['overlap']:.2f})", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def _fig_roc(p: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.0, 3.6))
    ax.plot(p["roc"]["fpr"], p["roc"]["tpr"], color=PALETTE[0])
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    mt = p.get("model_threshold")
    if mt:  # where compare's cosine threshold sits on this index's pairs
        ax.plot([mt["far"]], [1 - mt["frr"]], "o", color="black", ms=5,
                label=f"compare's cosine threshold {mt['distance']:.3f}")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC, same work? (AUC {p['auc']:.3f})", fontsize=10)
    return _png(fig)


def _fig_pr(p: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.0, 3.6))
    ax.plot(p["pr"]["recall"], p["pr"]["precision"], color=PALETTE[1])
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Precision-recall (AP {p['average_precision']:.3f})", fontsize=10)
    return _png(fig)


def _fig_recall(rk: list[dict]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.plot([r["k"] for r in rk], [r["recall"] for r in rk], marker="o", color=PALETTE[4])
    for r in rk:
        ax.annotate(f"{100 * r['fraction']:g}%", (r["k"], r["recall"]), fontsize=7,
                    textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set_xscale("log")
    ax.set_xlabel("shortlist size K (share of the catalogue)")
    ax.set_ylabel("recall at K")
    ax.set_ylim(0, 1.05)
    ax.set_title("Recall of the cosine shortlist (the re-rank's ceiling)", fontsize=10)
    return _png(fig)


def figures(numbers: dict) -> dict[str, tuple[str, str]]:
    """Every figure the numbers allow, as ``{key: (caption, base64 PNG)}``, in page order."""
    r = numbers["retrieval"]
    out = {}
    if "pairs" in numbers:
        p = numbers["pairs"]
        out["distances"] = ("In-work vs cross-work cosine distances (densities); the overlap is the share of "
                            "mass the two distributions have in common (0 = separated, 1 = identical).", _fig_distances(p))
        out["roc"] = ("ROC of the decision \"same work?\" by thresholding the cosine distance.", _fig_roc(p))
        out["pr"] = ("Precision-recall of the same decision on the balanced pairs (half are versions).", _fig_pr(p))
    out["rank_hist"] = ("How far down the list the first other version of the query is.", _fig_rank_hist(r))
    out["map_by_size"] = ("MAP of the queries whose work has this many versions in the index.", _fig_map_by_size(r))
    if numbers["retrieval"].get("recall_at_k"):
        out["recall"] = ("Share of a query's versions inside the first K cosine neighbours: what a re-rank "
                         "of that shortlist can reach at best.", _fig_recall(numbers["retrieval"]["recall_at_k"]))
    out["map2d"] = ("Embeddings projected on their two principal axes; colours are the largest works, grey "
                    "a sample of the others.", _fig_map2d(numbers["embedding_map"]))
    if numbers.get("kmeans", {}).get("rows"):
        out["kmeans"] = ("K-means on the embeddings scored against the work labels (adjusted Rand index, "
                         "normalised mutual information, purity).", _fig_kmeans(numbers["kmeans"]))
    if numbers.get("training"):
        out["training"] = ("Training loss and validation MAP per epoch, from the model's record; the dotted "
                           "line is the kept epoch.", _fig_training(numbers["training"]))
    return out


def _e(x) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9em} .cards{display:flex;flex-wrap:wrap;gap:.6em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.4em .8em;min-width:5.5em}
.card b{display:block;font-size:1.4em} .card span{color:#666;font-size:.8em}
.grid{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;flex:0 1 365px;max-width:365px}
figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.8em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right}
th{background:#f5f5f5} code{background:#f3f3f3;padding:0 .3em}
.panel{flex:1 1 365px;font-size:.85em} .panel h3{font-size:1em;margin:.2em 0}
"""


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _compare_panel(numbers: dict) -> str:
    """The threshold ``coversearch compare`` decides on: value, how it was calibrated, its stored rates."""
    c = numbers.get("compare_threshold")
    if not c:
        note = numbers.get("compare_threshold_note", "no calibration for this model")
        return (f'<div class="panel" id="compare-threshold"><h3>The threshold <code>compare</code> uses</h3>'
                f"<p>{_e(note)}</p></div>")
    sp = c.get("split") or {}
    how = (f"Calibrated on {c.get('data') or 'validation works'} ({sp.get('calibration_works', '?')} works, "
           f"{sp.get('test_works', '?')} held out; seed {c.get('seed')}; criterion {c.get('criterion')}; "
           f"{c.get('created', '')}).")
    rows = [[r["score"], r["pairs"], f"{r.get('n_positive') or 0}+{r.get('n_negative') or 0}", _pct(r.get("accuracy")),
             "—" if r.get("f1") is None else f"{r['f1']:.3f}", _pct(r.get("far")), _pct(r.get("frr"))]
            for r in c["rates"]]
    mt = (numbers.get("pairs") or {}).get("model_threshold")
    here = ""
    if mt:
        here = (f"<p>Its cosine half (distance &le; {mt['distance']:.4f}) on this index's pairs: accuracy "
                f"{_pct(mt['accuracy'])}, F1 {mt['f1']:.3f}, false accepts {_pct(mt['far'])}, false rejects "
                f"{_pct(mt['frr'])} (the black dot on the ROC).</p>")
    return (f'<div class="panel" id="compare-threshold"><h3>The threshold <code>compare</code> uses</h3>'
            f"<p><b>{_e(c['rule'])}</b>; beside it, cosine distance &le; {c['cosine_distance_threshold']:.4f} "
            f"(embedding only).</p><p class=\"meta\">{_e(how)} From <code>{_e(c['path'])}</code>; regenerate: "
            f"<code>{_e(c.get('command') or 'coversearch calibrate')}</code></p>"
            + _table(["score", "pairs (stored)", "versions+other", "accuracy", "F1", "false accepts",
                      "false rejects"], rows) + here + "</div>")


def render_html(numbers: dict, figs: dict[str, tuple[str, str]] | None = None) -> str:
    """The whole page as one HTML string (figures embedded as data: URIs)."""
    figs = figures(numbers) if figs is None else figs
    r = numbers["retrieval"]
    m = r["metrics"]
    src = numbers["source"]
    cards = [("MAP", f"{m['map']:.3f}"), ("MR1", f"{m['mr1']:.2f}"), ("P@10", f"{m['p_at_10']:.3f}"),
             ("queries", f"{m['n_queries']:,}"), ("items", f"{m['n_items']:,}")]
    p = numbers.get("pairs")
    if p:
        cards += [("pair AUC", f"{p['auc']:.3f}")]
        t = p.get("threshold") or {}
        if "accuracy" in t:
            cards += [("calibrated accuracy", f"{t['accuracy']:.3f}"), ("F1", f"{t['f1']:.3f}")]
    c = numbers.get("compare_threshold")
    if c:
        cards += [("compare's threshold (fused)", f"{c['fused_threshold']:.3f}")]
    card_html = "".join(f'<div class="card"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in cards)

    def fig(key):
        if key not in figs:
            return ""
        cap, b64 = figs[key]
        return (f'<figure id="fig-{key}"><img alt="{_e(key)}" src="data:image/png;base64,{b64}">'
                f"<figcaption>{_e(cap)}</figcaption></figure>")

    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>coversearch report: {_e(src['index_dir'])}</title><style>{CSS}</style></head><body>",
        "<h1>coversearch report</h1>",
        f'<p class="meta">index <code>{_e(src["index_dir"])}</code> ({_e(src["index_kind"])}, {src["count"]:,} '
        f'items, {src["dim"]}-D) &middot; model <code>{_e(src["model_hash"])}</code> &middot; feature '
        f'{_e(src["feature"])} &middot; data <code>{_e(src["data"])}</code> &middot; made {_e(numbers["created"])} '
        f'(numbers computed in {numbers["seconds"]:.1f} s)</p>',
        f'<div class="cards">{card_html}</div>',
    ]
    if p:
        t = p.get("threshold") or {}
        parts.append("<h2>Pair decisions: same work or not?</h2>")
        parts.append(f'<div class="grid">{fig("distances")}{fig("roc")}{fig("pr")}'
                     f'{_compare_panel(numbers)}</div>')
        d = p["distances"]
        parts.append(_table(["pairs", "count", "mean distance", "median", "5%", "95%"],
                            [[name, s["n"], f"{s['mean']:.3f}", f"{s['quantiles']['50']:.3f}",
                              f"{s['quantiles']['5']:.3f}", f"{s['quantiles']['95']:.3f}"]
                             for name, s in (("same work", d["in_work_stats"]), ("different works", d["cross_work_stats"]))]))
        rows = []
        for name, th in (("calibrated on half of the works, scored on the other half", p.get("threshold")),
                         ("the model's stored threshold, scored on all pairs", p.get("model_threshold"))):
            if th:
                rows.append([name, f"{th['distance']:.4f}", f"{th['accuracy']:.3f}", f"{th['f1']:.3f}",
                             f"{th['far']:.3f}", f"{th['frr']:.3f}"])
        if rows:
            parts.append(f"<p>Pairs: all {p['n_in_work']:,} in-work pairs and as many cross-work pairs (balanced). "
                         "A pair is called versions when its cosine distance is below the threshold.</p>")
            parts.append(_table(["threshold", "distance", "accuracy", "F1", "false accepts", "false rejects"], rows))
    parts.append("<h2>Retrieval: every item queries all others</h2>")
    parts.append(f'<div class="grid">{fig("rank_hist")}{fig("map_by_size")}{fig("recall")}</div>')
    parts.append(_table(["versions", "works", "queries", "MAP", "MR1"],
                        [[x["size"], x["n_works"], x["n_queries"], f"{x['map']:.3f}", f"{x['mr1']:.2f}"]
                         for x in r["map_by_clique_size"]]))
    if numbers["retrieval"].get("recall_at_k"):
        parts.append(_table(["share of catalogue", "K", "recall at K"],
                            [[f"{100 * x['fraction']:g}%", x["k"], f"{x['recall']:.3f}"] for x in numbers["retrieval"]["recall_at_k"]]))
    parts.append(f"<h2>Works, worst first ({len(r['works_worst'])} of {r['n_works_with_versions']})</h2>")
    parts.append(_table(["work", "versions", "AP (mean over its queries)", "MR1", "best first rank"],
                        [[w["work_id"], w["versions"], f"{w['ap']:.3f}", f"{w['mr1']:.1f}", w["best_r1"]]
                         for w in r["works_worst"]]))
    parts.append("<h2>The embedding space</h2>")
    parts.append(f'<div class="grid">{fig("map2d")}{fig("kmeans")}</div>')
    km = numbers.get("kmeans", {}).get("rows")
    if km:
        parts.append(_table(["k", "ARI", "NMI", "purity"],
                            [[x["k"], f"{x['ari']:.3f}", f"{x['nmi']:.3f}", f"{x['purity']:.3f}"] for x in km]))
    t = numbers.get("training")
    parts.append("<h2>The model's training</h2>")
    if t:
        parts.append(f'<div class="grid">{fig("training")}</div>')
        parts.append(f'<p class="meta">trained on <code>{_e(t["source"])}</code> ({t.get("n_train_works")} works; '
                     f'{t.get("n_val_works")} held-out validation works); kept epoch {t["best"].get("epoch")} '
                     f'(validation MAP {t["best"].get("val_map")})</p>')
    else:
        parts.append(f"<p>{_e(numbers.get('training_note', 'no training record found'))}</p>")
    parts.append(f'<p class="meta">Regenerate: <code>{_e(numbers["command"])}</code></p></body></html>')
    return "\n".join(parts)
