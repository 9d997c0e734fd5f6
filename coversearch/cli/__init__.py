"""The terminal: a thin click layer over the public functions in ``coversearch.api``
(and a few stage modules). Only this package turns a ``CoversearchError`` into
``Error: ...`` on stderr and a non-zero exit code; heavy imports happen inside
the commands so ``--help`` and ``query`` by id stay fast.

One module per group of verbs; each registers its commands on ``main`` when
imported at the bottom of this file.
"""

from __future__ import annotations

import click


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


# Each module adds its commands to ``main`` (import order = order in --help).
from coversearch.cli import adapt_cmds, data_cmds, audio_cmds, index_cmds, report_cmds, search_cmds, serve_cmds, train_cmds  # noqa: E402,F401
from coversearch.cli import compare_cmds  # noqa: E402,F401
