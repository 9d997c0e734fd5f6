"""Index verbs: ``build-index``."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors
from coversearch.cli.scale_cmds import ray_options, store_options
from coversearch.cli.adapt_cmds import adapt_options, adapt_settings, echo_adapt


@main.command("build-index")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Da-TACOS root (either layout, either subset). Default: the embedded synthetic demo data, generated on first use.")
@click.option("--audio", type=click.Path(file_okay=False), default=None,
              help="A folder of audio files to index instead of --data: their features are extracted first "
                   "(as `coversearch extract` does) into --features-dir.")
@click.option("--features-dir", type=click.Path(file_okay=False), default=None,
              help="With --audio: where the extracted features go (reused on the next run). "
                   "Default: ~/.cache/coversearch/audio-features/<folder name>-<hash of its path>.")
@click.option("--works", type=click.Path(dir_okay=False), default=None,
              help="With --audio: a CSV of 'path,work_id' rows grouping files into works (as `extract --works`); "
                   "default: one work per file.")
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
@click.option("--adapt", "do_adapt", is_flag=True,
              help="Then adapt the encoder to this catalogue without labels (`coversearch adapt`; options below).")
@adapt_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@ray_options
@store_options
@_reports_errors
def build_index_cmd(data, audio, features_dir, works, model, index_dir, index_type, feature, subset, jobs, skip_bad, do_adapt,
                    rounds, steps, lr, keep, fdr, mine_shortlist, mine_rule, holdout, seed, threads, quiet, **scale):
    """Embed every performance and write the FAISS index, the items table and a manifest."""
    from coversearch import api

    out = api.build_index(data, model=model, index_dir=index_dir, index_type=index_type, feature=feature,
                          subset=subset, jobs=jobs, skip_bad=skip_bad, progress=not quiet, log=_echo_err,
                          audio=audio, features_dir=features_dir, works=works, **scale)
    m = out["manifest"]
    s = out["seconds"]
    click.echo(f"indexed {out['count']} performances into {out['index_dir']} "
               f"({m.index_kind}, dim {m.dim}, model {m.model_hash}); "
               f"prepare {s['prepare']} s, embed {s['embed']} s, index {s['index']} s"
               + (f"; skipped {out['skipped']} bad file(s)" if out["skipped"] else ""))
    if do_adapt:
        mine, train = adapt_settings(steps, lr, keep, fdr, mine_shortlist, mine_rule, holdout, seed, threads)
        echo_adapt(api.adapt(index_dir, model=model, rounds=rounds, mine=mine, train=train, jobs=jobs,
                             progress=not quiet, log=_echo_err))
    if out["skipped"]:
        # listed again last, on stdout: with --quiet or with stderr hidden the user still sees which
        for path in m.extra.get("skipped", []):
            click.echo(f"  skipped: {path}")
