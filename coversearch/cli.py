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
