"""The HTTP API and the web page (``coversearch serve``).

- ``config``: :class:`ServeConfig`, the settings (1:1 with the CLI options).
- ``holder``: the index in service and its atomic reload.
- ``catalogue``: id/title/artist prefix search (autocomplete).
- ``pool``: the bounded pool for heavy requests (503 + Retry-After when full).
- ``uploads``: accepted types and private temporary files.
- ``profile``: a query's distance profile (its versions against the rest).
- ``app``: the FastAPI app; ``static/``: the page (plain HTML, CSS, JS).

FastAPI and uvicorn are the ``serve`` extra: ``pip install 'coversearch[serve]'``.
"""

from coversearch.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app", "run"]


def create_app(config=None, **kwargs):
    """The FastAPI app (see :func:`coversearch.serve.app.create_app`)."""
    from coversearch.serve.app import create_app as _create

    return _create(config, **kwargs)


def run(config: ServeConfig, *, log=print) -> None:
    """Load the index, say where the server listens, and serve until interrupted."""
    import uvicorn

    app = create_app(config)
    snap = app.state.holder.current
    scope = ("this machine only" if config.host in ("127.0.0.1", "localhost", "::1")
             else "ALL machines that can reach this one" if config.host in ("0.0.0.0", "::")
             else f"the network of {config.host}")
    log(f"coversearch serve: {snap.count} performances from {config.index_dir} (index {snap.version}); "
        f"listening on http://{config.host}:{config.port}/ ({scope}); API docs at /docs; "
        f"{config.workers} heavy worker(s) + {config.queue} waiting; Ctrl-C stops")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=config.access_log)
