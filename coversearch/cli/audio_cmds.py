"""Audio verbs: ``extract`` (audio files -> Da-TACOS features)."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors


@main.command("extract")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Da-TACOS root to write (benchmark naming); reruns resume into it.")
@click.option("--features", default="hpcp", show_default=True,
              help="Comma-separated: hpcp (what the shipped encoder reads), cens (librosa's chroma_cens; needs coversearch[cens]).")
@click.option("--works", type=click.Path(dir_okay=False), default=None,
              help="CSV of 'path,work_id' rows grouping files into works (default: one work per file).")
@click.option("--jobs", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--skip-bad", is_flag=True, help="Skip unusable files and list them at the end instead of stopping at the first.")
@click.option("--quiet", is_flag=True, help="No progress bar (skipped files are still listed).")
@_reports_errors
def extract_cmd(inputs, out, features, works, jobs, skip_bad, quiet):
    """Compute Da-TACOS features (HPCP as Da-TACOS did: essentia, 44.1 kHz, hop 512) of audio files.

    INPUTS are audio files or folders (searched recursively for wav, flac, mp3,
    ogg, opus, m4a, aiff, ...). Writes OUT/da-tacos_benchmark_subset_<feature>/W_x_<feature>/P_y_<feature>.h5
    and OUT/da-tacos_metadata/ (title and artist from the tags, else the file
    name; the source path as 'source'). Ids are deterministic from the path:
    P_<n>, n = 10^15 + the first 48 bits of sha256('<folder name>/<path in folder>')
    (or of the file name for a file given directly). A rerun skips files whose
    output is complete and whose size and mtime are unchanged. Recordings must
    be at least 5 s long and not silent.
    """
    from coversearch import api

    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    r = api.extract_audio(inputs, out, features=feats, works=works, jobs=jobs, skip_bad=skip_bad,
                          progress=not quiet, log=_echo_err)
    rt = r["audio_seconds"] / r["features_cpu"] if r["features_cpu"] else 0
    click.echo(f"extracted {r['extracted']} file(s), {r['unchanged']} unchanged"
               + (f", skipped {len(r['bad'])} bad" if r["bad"] else "")
               + f" into {r['out']} ({r['audio_seconds'] / 60:.1f} min of audio in {r['seconds']:.1f} s"
               + (f"; features at {rt:.0f}x real time per core" if rt else "") + ")")
