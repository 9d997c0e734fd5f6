"""The terminal: a thin click layer over the public functions in ``coversearch.api``
(and a few stage modules). Only this module turns a ``CoversearchError`` into
``Error: ...`` on stderr and a non-zero exit code; heavy imports happen inside
the commands so ``--help`` and ``query`` by id stay fast.
"""

from __future__ import annotations

import functools
import sys

import click

from coversearch.errors import CoversearchError


def _reports_errors(fn):
    """Turn a CoversearchError into a one-line ``Error: ...`` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CoversearchError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing under a final name was half-written", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coversearch")
def main():
    """coversearch: find the other versions (covers, live takes, remixes) of a
    performance in Da-TACOS-format data.

    \b
    Typical use on the embedded default (synthetic Da-TACOS, shipped encoder):
      coversearch build-index          # generate demo data if absent, embed, index
      coversearch query P_22 --k 10    # versions of P_22, by cosine distance
      coversearch evaluate             # MAP / MR1 / P@10, all against all
    """


# --- commands are added below, each a thin layer over a public function ---


# --- download (coversearch.download) ---
@main.command("download")
@click.option("--subset", type=click.Choice(["benchmark", "coveranalysis", "all"]),
              default="benchmark", show_default=True,
              help="Which Da-TACOS subset; benchmark for index/evaluate, coveranalysis for training.")
@click.option("--features", default="hpcp", show_default=True,
              help="Comma-separated features (hpcp, crema, cens, mfcc, madmom, key, tags; or all). "
                   "hpcp is what the shipped encoder reads. Metadata is always fetched.")
@click.option("--dest", type=click.Path(file_okay=False), default="data/da-tacos",
              show_default=True, help="Data root to fill; give it to build-index --data.")
@click.option("--source", metavar="URL-BASE", default=None,
              help="Mirror: fetch every archive from URL-BASE/<archive file name>.")
@click.option("--no-unpack", is_flag=True, help="Only fetch and verify the zips (kept).")
@click.option("--keep-zips", is_flag=True, help="Keep each zip after unpacking it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_reports_errors
def download_cmd(subset, features, dest, source, no_unpack, keep_zips, quiet):
    """Fetch the real Da-TACOS (Zenodo), verify each archive's MD5, unpack.

    Resumes an interrupted transfer; a second run verifies and skips what is
    complete. Afterwards: coversearch build-index --data DEST.
    """
    from coversearch.download import download

    records = download(dest, subset=subset, features=features, source=source,
                       unpack=not no_unpack, keep_zips=keep_zips, progress=not quiet)
    for r in records:
        where = f" -> {r['folder']}/" if r["folder"] else ""
        click.echo(f"{r['status']:<10} {r['name']} ({r['bytes']} bytes, md5 {r['md5']}){where}")
    click.echo(f"Data ready in {dest}: coversearch build-index --data {dest}")


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


@main.command("build-index")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Da-TACOS root (either layout, either subset). Default: the embedded synthetic demo data, generated on first use.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Encoder checkpoint (.pt). Default: the shipped encoder.")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True,
              help="Index folder to write (replaced atomically when complete).")
@click.option("--index-type", type=click.Choice(["auto", "flat", "hnsw", "ivfpq"]), default="auto", show_default=True,
              help="FAISS index kind; auto picks by catalogue size and memory (flat below 200k vectors).")
@click.option("--feature", type=click.Choice(["hpcp", "crema", "cens"]), default=None,
              help="Chroma feature to read. Default: the one the model was trained on.")
@click.option("--subset", type=click.Choice(["benchmark", "coveranalysis"]), default=None,
              help="Index only this subset of --data (default: every subset found).")
@click.option("--jobs", type=int, default=2, show_default=True, help="Reader processes for the prepared cache.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable files (and list them) instead of stopping at the first.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_reports_errors
def build_index_cmd(data, model, index_dir, index_type, feature, subset, jobs, skip_bad, quiet):
    """Embed every performance and write the FAISS index, the items table and a manifest."""
    from coversearch import api

    out = api.build_index(data, model=model, index_dir=index_dir, index_type=index_type, feature=feature,
                          subset=subset, jobs=jobs, skip_bad=skip_bad, progress=not quiet, log=_echo_err)
    m = out["manifest"]
    s = out["seconds"]
    click.echo(f"indexed {out['count']} performances into {out['index_dir']} "
               f"({m.index_kind}, dim {m.dim}, model {m.model_hash}); "
               f"prepare {s['prepare']} s, embed {s['embed']} s, index {s['index']} s"
               + (f"; skipped {out['skipped']} bad file(s)" if out["skipped"] else ""))


@main.command("query")
@click.argument("perf_id", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Query with an h5 file that is not in the index (embedded on the fly; needs the index's model).")
@click.option("--k", type=int, default=10, show_default=True, help="How many results.")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Encoder for --file (default: shipped).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--rerank", is_flag=True,
              help="Re-order the cosine shortlist by key-aligned cross-recurrence (Qmax) fused with the cosine.")
@click.option("--shortlist", type=int, default=None,
              help="With --rerank: how many cosine neighbours to align (default: the index's tuned value, else 100).")
@_reports_errors
def query_cmd(perf_id, file, k, index_dir, model, as_json, rerank, shortlist):
    """Rank the indexed performances by cosine distance to PERF_ID (e.g. P_22).

    A '*' marks results of the same work as the query (when it is known).
    """
    from coversearch import api

    out = api.query(perf_id, file=file, k=k, index_dir=index_dir, model=model, rerank=rerank, shortlist=shortlist)
    if as_json:
        import json

        click.echo(json.dumps(out, indent=2))
        return
    q = out["query"]
    click.echo(f"query {q.get('perf_id') or q.get('file')} (work {q.get('work_id') or '?'})")
    click.echo(f"{'rank':>4}  {'performance':<12} {'work':<10} {'title':<28} {'artist':<22} {'distance':>8}")
    for r in out["results"]:
        mark = "*" if r["same_work"] else " "
        title = (r.get("perf_title") or r.get("work_title") or "")[:28]
        artist = (r.get("perf_artist") or "")[:22]
        click.echo(f"{r['rank']:>4}{mark} {r['perf_id']:<12} {r['work_id']:<10} {title:<28} {artist:<22} {r['distance']:>8.4f}")


@main.command("evaluate")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the metrics as JSON.")
@click.option("--rerank", is_flag=True, help="Re-rank each query's cosine shortlist by alignment (slow: ~K alignments per query).")
@click.option("--shortlist", type=int, default=None, help="With --rerank: shortlist size K (default: the index's tuned value).")
@click.option("--max-queries", type=int, default=None,
              help="Evaluate a seeded sample of this many queries (all items stay candidates).")
@click.option("--jobs", type=int, default=1, show_default=True, help="Alignment threads for --rerank.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_reports_errors
def evaluate_cmd(index_dir, json_path, rerank, shortlist, max_queries, jobs, quiet):
    """All-against-all retrieval: MAP, MR1 (mean rank of the first correct answer), P@10.

    Every indexed performance queries all others (itself excluded); MAP and MR1
    are over the queries with at least one other version in the index. AP is
    MOVE's and acoss's (identical); MR1 follows acoss; P@10 is the share of the
    top 10 that are versions (MOVE's top-10 count / 10); tied scores are ranked
    pessimistically.
    """
    from coversearch import api

    m = api.evaluate(index_dir, progress=not quiet, rerank=rerank, shortlist=shortlist,
                     max_queries=max_queries, jobs=jobs)
    extra = f", re-ranked shortlist {m['shortlist']}" if m.get("rerank") else ""
    click.echo(f"MAP {m['map']:.4f}  MR1 {m['mr1']:.2f}  P@10 {m['p_at_10']:.4f}  "
               f"({m['n_queries']} queries with a version among {m['n_items']} items, {m['seconds']:.2f} s{extra})")
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
    """Choose the re-rank weight, normalisation and shortlist on validation works; save rerank.json beside the index."""
    from coversearch import api

    out = api.tune_rerank(index_dir, val_data=val_data, model=model, n_queries=queries, jobs=jobs,
                          progress=not quiet, log=_echo_err)
    b, e = out["validation"]["best"], out["validation"]["embedding_only"]
    click.echo(f"saved {index_dir}/rerank.json: shortlist {b['shortlist']}, weight {b['weight']}, norm {b['norm']} "
               f"(validation MAP {b['map']:.4f} vs embedding only {e['map']:.4f})")


@main.command("train")
@click.option("--data", type=click.Path(file_okay=False), required=True,
              help="Training data root: the synthetic `train` profile, or a real cover-analysis subset.")
@click.option("--out", type=click.Path(dir_okay=False), default="models/encoder.pt", show_default=True,
              help="Checkpoint to write (a .json record with config and history goes beside it).")
@click.option("--epochs", type=int, default=12, show_default=True)
@click.option("--dim", type=click.Choice(["64", "128"]), default="128", show_default=True, help="Embedding size.")
@click.option("--channels", type=int, default=32, show_default=True, help="Filters of the pitch-circular first layer.")
@click.option("--hidden", type=int, default=64, show_default=True, help="Channels of the temporal layers.")
@click.option("--n-temporal", type=click.IntRange(1, 8), default=3, show_default=True,
              help="Dilated temporal layers (receptive field ~3.5 s + 0.9 s x (2^N - 1)).")
@click.option("--crop", type=click.IntRange(min=32), default=256, show_default=True, help="Training crop in 0.232 s frames (256 = 59 s).")
@click.option("--loss", type=click.Choice(["supcon", "triplet", "ms"]), default="supcon", show_default=True,
              help="supcon = supervised contrastive; triplet = batch-hard online mining (MOVE); ms = multi-similarity.")
@click.option("--feature", type=click.Choice(["hpcp", "crema", "cens"]), default="hpcp", show_default=True)
@click.option("--subset", type=click.Choice(["benchmark", "coveranalysis"]), default=None, help="Only this subset of --data.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--works-per-batch", type=int, default=16, show_default=True)
@click.option("--jobs", type=int, default=2, show_default=True, help="Reader processes for the prepared cache.")
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads.")
@click.option("--init", "init_from", type=click.Path(dir_okay=False), default=None,
              help="Fine-tune this checkpoint (e.g. the shipped encoder) instead of starting from scratch.")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable files (and list them) instead of stopping at the first.")
@click.option("--quiet", is_flag=True)
@_reports_errors
def train_cmd(data, out, epochs, dim, channels, hidden, n_temporal, crop, loss, feature, subset, seed, lr, works_per_batch, jobs, threads, init_from, skip_bad, quiet):
    """Train the encoder on CPU; keep the epoch with the best validation MAP.

    Validation works are held out of training (8% of the multi-version works,
    drawn with --seed); per-epoch loss and validation MAP are printed and stored.
    """
    from coversearch import api
    from coversearch.model.config import EncoderConfig, TrainConfig

    rec = api.train(
        data, out, feature=feature, subset=subset,
        encoder_config=EncoderConfig(dim=int(dim), channels=channels, hidden=hidden, n_temporal=n_temporal, feature=feature),
        train_config=TrainConfig(loss=loss, epochs=epochs, seed=seed, lr=lr, works_per_batch=works_per_batch,
                                 crop=crop, threads=threads),
        jobs=jobs, skip_bad=skip_bad, init_from=init_from, progress=not quiet, log=_echo_err,
    )
    b = rec["best"]
    click.echo(f"saved {out} (model {rec['model_hash']}): best epoch {b['epoch']}, validation MAP {b.get('val_map', float('nan')):.4f}")


@main.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--profile", type=click.Choice(["demo", "benchmark", "train"]), default="demo", show_default=True,
              help="demo: W_22 + a few works (~160 perfs); benchmark: real membership, 15,000 perfs; "
                   "train: disjoint W_5000000+ works, 2-8 versions each.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed -> identical files.")
@click.option("--features", default="hpcp,crema,cens", show_default=True, help="Comma-separated: hpcp,crema,cens.")
@click.option("--hop", type=int, default=512, show_default=True,
              help="Frame hop in samples at 44.1 kHz (512 = real Da-TACOS; others recorded as root attribute hop_length).")
@click.option("--layout", type=click.Choice(["per-feature", "single-files", "both"]), default="both", show_default=True)
@click.option("--jobs", type=int, default=1, show_default=True, help="Worker processes (output does not depend on it).")
@click.option("--variation", type=click.Choice(["standard", "wide"]), default="standard", show_default=True,
              help="standard = training setting; wide = held-out, wider variation.")
@click.option("--n-works", type=int, default=None, help="Override the profile's number of works.")
@click.option("--max-seconds", type=float, default=None, help="Cap every version's length (quick sets).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_reports_errors
def synth_cmd(out_dir, profile, seed, features, hop, layout, jobs, variation, n_works, max_seconds, quiet):
    """Generate a synthetic Da-TACOS (cover-song features, real on-disk format) into OUT_DIR."""
    from coversearch.data.synth import generate

    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    s = generate(out_dir, profile=profile, seed=seed, features=feats, hop=hop, layout=layout, jobs=jobs,
                 variation=variation, n_works=n_works, progress=not quiet, max_seconds=max_seconds)
    resumed = f", {s['resumed']} already there" if s["resumed"] else ""
    click.echo(f"wrote {s['n_performances']} performances{resumed} of {s['n_works']} works ({s['subset']} subset, "
               f"{s['variation']}) to {out_dir} in {s['seconds']:.1f} s "
               f"({s['cpu_per_performance']:.3f} CPU s/performance, {s['audio_hours']:.2f} h of audio)")
