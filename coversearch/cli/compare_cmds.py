"""Pair verbs: ``compare`` (are two performances versions?) and ``calibrate``
(choose its threshold for a model on validation works)."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors


def _compare_help() -> str:
    from coversearch.compare import shipped_calibration_summary

    return (
        "Are A and B versions of the same work? Each is a performance id in the index, "
        "a Da-TACOS h5 file, or an audio file (wav, flac, mp3, ogg, ...: decoded and its HPCP "
        "extracted as `query --audio` does; at least 5 s).\n\n"
        "Prints the cosine distance of the two embeddings, the alignment score "
        "(Serra09 Qmax, normalised as the re-rank stage does) and their fused score, "
        "and a verdict 'versions' / 'not versions' with its confidence: the probability "
        "that the verdict is right for a pair that is a priori as likely to be versions "
        "as not. The threshold and the confidence curve are calibrated per model on "
        "validation works and stored beside it (NAME.calibration.json, with the fusion weight, "
        "normalisation and alignment it was fitted at, which compare applies as stored; "
        "`coversearch calibrate` remakes it at the re-rank defaults).\n\n" + shipped_calibration_summary()
    )


class _CompareCommand(click.Command):
    """Builds its help (which reads the shipped calibration, numpy and all) only when asked,
    so every other command starts without it."""

    def format_help_text(self, ctx, formatter):
        self.help = _compare_help()
        super().format_help_text(ctx, formatter)


@main.command("compare", cls=_CompareCommand,
              short_help="Are A and B (ids, h5 or audio files) versions of the same work? A calibrated verdict.")
@click.argument("a")
@click.argument("b")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True,
              help="Index holding the performance ids (not needed for two files).")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Encoder checkpoint (default: shipped); its NAME.calibration.json must exist.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_reports_errors
def compare_cmd(a, b, index_dir, model, as_json):
    from coversearch import api

    out = api.compare(a, b, index_dir=index_dir, model=model)
    if as_json:
        import json

        click.echo(json.dumps(out, indent=2))
        return

    def name(s):
        if s["kind"] == "id":
            return f"{s['perf_id']} (work {s['work_id']})"
        known = f", {s['perf_id']} of work {s['work_id']}" if s.get("perf_id") and s.get("work_id") else ""
        return f"{s['file']} ({s['kind']}{known})"

    click.echo(f"A: {name(out['a'])}")
    click.echo(f"B: {name(out['b'])}")
    c = out["cosine_only"]
    click.echo(f"cosine distance   {out['cosine_distance']:.4f}   (embedding alone: "
               f"{'versions' if c['versions'] else 'not versions'} below {c['threshold']:.4f})")
    click.echo(f"alignment (Qmax)  {out['qmax']:.2f} raw, {out['qmax_norm']:.4f} normalised")
    click.echo(f"fused score       {out['fused']:.4f}   (threshold {out['threshold']:.4f})")
    verdict = "versions" if out["versions"] else "not versions"
    click.echo(f"verdict: {verdict} (confidence {out['confidence']:.0%})")
    if out["a"].get("work_id") and out["b"].get("work_id"):
        same = out["a"]["work_id"] == out["b"]["work_id"]
        click.echo(f"(known works: {'the same' if same else 'different'})")


@main.command("calibrate")
@click.option("--val-data", type=click.Path(file_okay=False), required=True,
              help="Validation works the model never saw (neither training nor evaluation data), "
                   "e.g. `coversearch synth DIR --profile train --seed 11 --n-works 120 --hop 4096 --features hpcp`.")
@click.option("--wide-data", type=click.Path(file_okay=False), default=None,
              help="A second held-out set to report error rates on (e.g. the 'wide' variation).")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Checkpoint to calibrate (default: shipped).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write here instead of NAME.calibration.json beside the model.")
@click.option("--test-fraction", type=float, default=1 / 3, show_default=True,
              help="Share of the validation works held out for the reported error rates.")
@click.option("--max-pairs", type=int, default=1500, show_default=True,
              help="Cap on version pairs per part (as many random cross-work pairs are drawn).")
@click.option("--seed", type=int, default=0, show_default=True, help="Split and pair sampling seed.")
@click.option("--criterion", type=click.Choice(["balanced_accuracy", "accuracy", "f1", "eer"]),
              default="balanced_accuracy", show_default=True, help="What the threshold maximises.")
@click.option("--weight", type=float, default=None,
              help="Fusion weight of the normalised Qmax in [0, 1] (default: the re-rank default, RerankConfig). "
                   "Recorded in the file; `compare` applies the threshold at this weight.")
@click.option("--norm", default=None,
              help="Qmax normalisation: min_len, sqrt_prod or query_max (default: the re-rank default). Recorded likewise.")
@click.option("--jobs", type=int, default=2, show_default=True, help="Reader processes for the prepared caches.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_reports_errors
def calibrate_cmd(val_data, wide_data, model, out, test_fraction, max_pairs, seed, criterion, weight, norm, jobs, quiet):
    """Choose the verdict threshold of `compare` for a model on validation works and store it beside the model.

    The fused score is computed with the re-rank defaults (RerankConfig: weight, norm, alignment) unless
    --weight/--norm say otherwise; the settings are stored in the file and `compare` uses exactly them."""
    import dataclasses
    import shlex
    import sys

    from coversearch import api
    from coversearch.errors import ConfigError
    from coversearch.rerank import RerankConfig, check_norm, check_weight

    rr = RerankConfig()
    for option, value, check in (("weight", weight, check_weight), ("norm", norm, check_norm)):
        if value is not None:
            try:
                rr = dataclasses.replace(rr, **{option: check(value)})
            except ConfigError as e:
                raise ConfigError(f"--{option}: {e}") from None
    rec = api.calibrate(val_data, model=model, wide_data=wide_data, out=out, test_fraction=test_fraction,
                        max_positive=max_pairs, seed=seed, criterion=criterion, rerank=rr, jobs=jobs,
                        progress=not quiet, command="coversearch " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
                        log=_echo_err)
    from coversearch.compare import Calibration, calibration_path, model_file_and_hash

    path = out or calibration_path(model_file_and_hash(model)[0])
    click.echo(f"saved {path}")
    click.echo(Calibration.from_record(rec, path).summary())
