"""Training verbs: ``train``."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors


@main.command("train")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Training data root: the synthetic `train` profile, or a real cover-analysis subset (required unless --resume).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint to write (a .json record with config and history goes beside it) "
                   "[default: models/encoder.pt, or the resumed run's].")
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
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Keep a resumable run folder here (config, history, best.pt, last.pt with optimizer/scheduler/RNG state).")
@click.option("--resume", "resume", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its last finished epoch (its stored configs and data are used).")
@click.option("--skip-bad", is_flag=True, help="Skip unreadable files (and list them) instead of stopping at the first.")
@click.option("--quiet", is_flag=True)
@_reports_errors
def train_cmd(data, out, epochs, dim, channels, hidden, n_temporal, crop, loss, feature, subset, seed, lr, works_per_batch, jobs, threads, init_from, run_dir, resume, skip_bad, quiet):
    """Train the encoder on CPU; keep the epoch with the best validation MAP.

    Validation works are held out of training (8% of the multi-version works,
    drawn with --seed); per-epoch loss and validation MAP are printed and stored.
    """
    from coversearch import api
    from coversearch.model.config import EncoderConfig, TrainConfig

    if out is None and not resume:
        out = "models/encoder.pt"
    rec = api.train(
        data, out, feature=feature, subset=subset,
        encoder_config=EncoderConfig(dim=int(dim), channels=channels, hidden=hidden, n_temporal=n_temporal, feature=feature),
        train_config=TrainConfig(loss=loss, epochs=epochs, seed=seed, lr=lr, works_per_batch=works_per_batch,
                                 crop=crop, threads=threads),
        jobs=jobs, skip_bad=skip_bad, init_from=init_from, progress=not quiet, log=_echo_err,
        run_dir=run_dir, resume=resume,
    )
    b = rec["best"]
    click.echo(f"saved {rec['out']} (model {rec['model_hash']}): best epoch {b['epoch']}, validation MAP {b.get('val_map', float('nan')):.4f}")
