"""Report verb: ``report`` (an index's results as a self-contained HTML page)."""

from __future__ import annotations

import sys

import click

from coversearch.cli import main
from coversearch.cli._common import _reports_errors


@main.command("report")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Folder of report.html (default: reports/<index folder name>).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write every number of the page as JSON.")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="The index's checkpoint (.pt) or record (.json), for its training curves "
                   "(default: the shipped encoder's record when it built the index).")
@click.option("--no-kmeans", is_flag=True, help="Skip the K-means sweep (the slowest part on large indexes).")
@_reports_errors
def report_cmd(index_dir, out, json_path, model, no_kmeans):
    """Write an HTML page of an index's results: pair decisions (distance
    histograms, ROC, precision-recall, calibrated threshold), retrieval (rank
    of the first version, MAP by clique size, worst works, recall at K), the
    embedding space (PCA map, K-means vs work labels) and the model's training
    curves. Figures are embedded; the page needs no network and no script.
    """
    from coversearch import api

    cmd = "coversearch " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["report"] else ""
    res = api.report(index_dir, out=out, json_path=json_path, model=model, kmeans=not no_kmeans, command=cmd)
    m = res["numbers"]["retrieval"]["metrics"]
    click.echo(f"wrote {res['html']} ({res['seconds']:.1f} s): MAP {m['map']:.4f}  MR1 {m['mr1']:.2f}  "
               f"P@10 {m['p_at_10']:.4f}" + (f"; numbers in {res['json']}" if res["json"] else ""))
