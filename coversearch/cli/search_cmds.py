"""Search verbs: ``query``, ``evaluate``, ``tune-rerank``."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors
from coversearch.cli.scale_cmds import store_uri_options


@main.command("query")
@click.argument("perf_id", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Query with an h5 file that is not in the index (embedded on the fly; needs the index's model).")
@click.option("--audio", "audio", type=click.Path(dir_okay=False), default=None,
              help="Query with an audio file (wav, flac, mp3, ...): HPCP extracted as Da-TACOS did, embedded on the fly.")
@click.option("--k", type=int, default=10, show_default=True, help="How many results.")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Encoder for --file / --audio (default: shipped).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--rerank", is_flag=True,
              help="Re-order the cosine shortlist by key-aligned cross-recurrence (Qmax) fused with the cosine: "
                   "a coarse pass over all of it, the full alignment over the best (the index's rerank.json).")
@click.option("--shortlist", type=int, default=None,
              help="With --rerank: how many cosine neighbours are eligible (K1; default: the index's rerank.json, "
                   "2% of the catalogue, at least 200).")
@click.option("--jobs", type=int, default=None, help="Cores for the re-rank alignments (default: all).")
@store_uri_options
@_reports_errors
def query_cmd(perf_id, file, audio, k, index_dir, model, as_json, rerank, shortlist, jobs, **store):
    """Rank the indexed performances by cosine distance to PERF_ID (e.g. P_22),
    an h5 file (--file) or an audio file (--audio).

    A '*' marks results of the same work as the query (when it is known); '='
    marks the query's own recording when a file or audio query is itself in
    the index (JSON: same_recording). With --rerank the table is ordered by
    the fused score (higher = closer) and shows it beside the cosine distance.
    """
    from coversearch import api

    import os

    out = api.query(perf_id, file=file, audio=audio, k=k, index_dir=index_dir, model=model, rerank=rerank,
                    shortlist=shortlist, jobs=jobs or os.cpu_count() or 1, **store)
    if as_json:
        import json

        click.echo(json.dumps(out, indent=2))
        return
    q = out["query"]
    same = f", same recording as {q['same_recording_as']}" if q.get("same_recording_as") else ""
    click.echo(f"query {q.get('perf_id') or q.get('file') or q.get('audio')} (work {q.get('work_id') or '?'}{same})")
    fused = any("fused_score" in r for r in out["results"])
    pid_w = max([12] + [len(r["perf_id"]) for r in out["results"]])
    wid_w = max([10] + [len(r["work_id"]) for r in out["results"]])
    click.echo(f"{'rank':>4}  {'performance':<{pid_w}} {'work':<{wid_w}} {'title':<28} {'artist':<22} "
               + (f"{'fused':>7} " if fused else "") + f"{'distance':>8}")
    for r in out["results"]:
        mark = "=" if r.get("same_recording") else "*" if r["same_work"] else " "
        title = (r.get("perf_title") or r.get("work_title") or "")[:28]
        artist = (r.get("perf_artist") or "")[:22]
        score = f"{r['fused_score']:>7.4f} " if fused else ""
        click.echo(f"{r['rank']:>4}{mark} {r['perf_id']:<{pid_w}} {r['work_id']:<{wid_w}} {title:<28} {artist:<22} "
                   f"{score}{r['distance']:>8.4f}")
    if any(r.get("same_recording") for r in out["results"]):
        click.echo("= the query's own recording (it is in the index)")


@main.command("evaluate")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the metrics as JSON.")
@click.option("--rerank", is_flag=True, help="Re-rank each query's cosine shortlist with the alignment cascade (the index's rerank.json).")
@click.option("--shortlist", type=int, default=None, help="With --rerank: eligible shortlist K1 (default: the index's rerank.json, 2% of the catalogue, at least 200).")
@click.option("--max-queries", type=int, default=None,
              help="Evaluate a seeded sample of this many queries (all items stay candidates).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Cores for the --rerank alignments.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@store_uri_options
@_reports_errors
def evaluate_cmd(index_dir, json_path, rerank, shortlist, max_queries, jobs, quiet, **store):
    """All-against-all retrieval: MAP, MR1 (mean rank of the first correct answer), P@10.

    Every indexed performance queries all others (itself excluded); MAP and MR1
    are over the queries with at least one other version in the index. AP is
    MOVE's and acoss's (identical); MR1 follows acoss; P@10 is the share of the
    top 10 that are versions (MOVE's top-10 count / 10); tied scores are ranked
    pessimistically.
    """
    from coversearch import api

    m = api.evaluate(index_dir, progress=not quiet, rerank=rerank, shortlist=shortlist,
                     max_queries=max_queries, jobs=jobs, **store)
    extra = f", re-ranked shortlist {m['shortlist']}" if m.get("rerank") else ""
    click.echo(f"MAP {m['map']:.4f}  MR1 {m['mr1']:.2f}  P@10 {m['p_at_10']:.4f}  "
               f"({m['n_queries']} queries with a version among {m['n_items']} items, {m['seconds']:.2f} s{extra})")
    if m.get("recall_at_k"):
        from coversearch.evaluate.retrieval import format_recall

        click.echo(f"first stage (cosine) {format_recall(m['recall_at_k'])}")
    if json_path:
        from coversearch._io import write_json_atomic

        write_json_atomic(json_path, m)




@main.command("tune-rerank")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--val-data", type=click.Path(file_okay=False), required=True,
              help="Validation works (a Da-TACOS root other than the indexed data), e.g. a synthetic train-profile set with an unseen seed.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="The index's encoder (default: shipped).")
@click.option("--queries", type=int, default=150, show_default=True, help="Validation queries to align.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Alignment threads.")
@click.option("--quiet", is_flag=True)
@_reports_errors
def tune_rerank_cmd(index_dir, val_data, model, queries, jobs, quiet):
    """Choose the re-rank weight, normalisation and K2 on validation works; store them as the index's rerank.json."""
    from coversearch import api

    out = api.tune_rerank(index_dir, val_data=val_data, model=model, n_queries=queries, jobs=jobs,
                          progress=not quiet, log=_echo_err)
    b, e = out["validation"]["best"], out["validation"]["embedding_only"]
    c = out["config"]
    click.echo(f"saved {index_dir}/rerank.json: full alignment of the best {c['fine']}, weight {b['weight']}, norm {b['norm']} "
               f"(validation MAP {b['map']:.4f} vs embedding only {e['map']:.4f})")
