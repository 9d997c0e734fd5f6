"""Data verbs: ``download`` (the real Da-TACOS) and ``synth`` (the generator)."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _reports_errors


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
@click.option("--analysis", type=click.Choice(["fast", "essentia"]), default="fast", show_default=True,
              help="fast: features at the 11,025 Hz rendering rate (every shipped set). essentia: the audio "
                   "upsampled to 44.1 kHz and analysed exactly as `extract` does (hop 512; ~2x the CPU).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_reports_errors
def synth_cmd(out_dir, profile, seed, features, hop, layout, jobs, variation, n_works, max_seconds, analysis, quiet):
    """Generate a synthetic Da-TACOS (cover-song features, real on-disk format) into OUT_DIR."""
    from coversearch.synth import generate

    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    s = generate(out_dir, profile=profile, seed=seed, features=feats, hop=hop, layout=layout, jobs=jobs,
                 variation=variation, n_works=n_works, progress=not quiet, max_seconds=max_seconds,
                 analysis=analysis)
    resumed = f", {s['resumed']} already there" if s["resumed"] else ""
    click.echo(f"wrote {s['n_performances']} performances{resumed} of {s['n_works']} works ({s['subset']} subset, "
               f"{s['variation']}) to {out_dir} in {s['seconds']:.1f} s "
               f"({s['cpu_per_performance']:.3f} CPU s/performance, {s['audio_hours']:.2f} h of audio)")
