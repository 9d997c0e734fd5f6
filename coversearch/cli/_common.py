"""What every command shares: errors to one line and an exit code, messages to stderr."""

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


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)
