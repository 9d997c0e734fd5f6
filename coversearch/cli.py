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
