"""Adaptation verbs: ``adapt`` (and the options ``build-index --adapt`` shares)."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors


def adapt_options(fn):
    """The adaptation settings, shared by ``adapt`` and ``build-index --adapt``."""
    opts = [
        click.option("--rounds", type=click.IntRange(1, 10), default=1, show_default=True,
                     help="mine -> fine-tune -> re-embed repetitions."),
        click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True, help="Fine-tuning steps per round."),
        click.option("--lr", type=float, default=3e-4, show_default=True, help="Fine-tuning learning rate (AdamW, cosine decay)."),
        click.option("--keep", type=float, default=0.03, show_default=True,
                     help="Share of the N x shortlist proposals kept as training pairs."),
        click.option("--fdr", type=click.FloatRange(0.0, 0.99), default=0.1, show_default=True,
                     help="Keep fewer pairs than --keep where the label-free (decoy) estimate of the share of "
                          "false pairs would pass this; 0 = off."),
        click.option("--mine-shortlist", type=click.IntRange(min=2), default=20, show_default=True,
                     help="Cosine neighbours proposed (and aligned) per performance."),
        click.option("--mine-rule", type=click.Choice(["robust_z", "global"]), default="robust_z", show_default=True,
                     help="robust_z: each performance judges its neighbours against its own shortlist; global: one threshold."),
        click.option("--holdout", type=click.FloatRange(0.0, 0.9), default=0.2, show_default=True,
                     help="Share of the mined pairs held out to pick the fine-tuning step to keep (checked every "
                          "50 steps and before the first; the adapted model is the best check, the starting "
                          "model if none beats it). 0 = train all steps, no check."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--threads", type=int, default=2, show_default=True, help="torch threads while fine-tuning."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def adapt_settings(steps, lr, keep, fdr, mine_shortlist, mine_rule, holdout, seed, threads):
    """(MineConfig, FinetuneConfig) from the shared options."""
    from coversearch.adapt import FinetuneConfig, MineConfig

    return (MineConfig(shortlist=mine_shortlist, rule=mine_rule, keep=keep, fdr=fdr),
            FinetuneConfig(steps=steps, lr=lr, holdout=holdout, seed=seed, threads=threads))


def echo_adapt(out) -> None:
    a = out["adaptation"]
    if not a["steps"]:
        click.echo("no fine-tuning step generalised to the held-out mined pairs (or too few confident pairs): "
                   "the adapted model keeps the starting weights, the vectors are unchanged")
    click.echo(f"adapted model {out['parent_model_hash']} -> {out['model_hash']} on {out['manifest'].count} performances: "
               f"{' + '.join(str(n) for n in a['n_pairs'])} mined pairs, {a['steps']} steps, {a['seconds']} s, "
               f"peak {a['peak_rss_mb']} MB; index written to {out['index_dir']}")


@main.command("adapt")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True,
              help="The index to adapt to (its catalogue, its model).")
@click.option("--out-index-dir", type=click.Path(file_okay=False), default=None,
              help="Write the adapted index here (default: replace --index-dir once the new one is complete).")
@click.option("--out-model", type=click.Path(dir_okay=False), default=None,
              help="Also save the adapted checkpoint here (the new index folder always carries its own copy).")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="The checkpoint that built --index-dir (default: the folder's own model, else the shipped encoder).")
@adapt_options
@click.option("--jobs", type=int, default=2, show_default=True, help="Alignment threads.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_reports_errors
def adapt_cmd(index_dir, out_index_dir, out_model, model, rounds, steps, lr, keep, fdr, mine_shortlist, mine_rule, holdout,
              seed, threads, jobs, quiet):
    """Fine-tune the encoder on the catalogue itself, without labels, and re-embed it.

    The embedding proposes each performance's nearest neighbours, alignment
    (Serra09 Qmax) confirms them, each performance keeps the candidates that
    stand out of its own shortlist, and the encoder is fine-tuned with each
    confident pair as its own class. Work ids are never read.
    """
    from coversearch import api

    mine, train = adapt_settings(steps, lr, keep, fdr, mine_shortlist, mine_rule, holdout, seed, threads)
    out = api.adapt(index_dir, out_index_dir=out_index_dir, out_model=out_model, model=model, rounds=rounds,
                    mine=mine, train=train, jobs=jobs, progress=not quiet, log=_echo_err)
    echo_adapt(out)
