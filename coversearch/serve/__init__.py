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
    """Load the index, say where the server listens, and serve until interrupted.

    With ``config.processes`` > 1, uvicorn starts that many worker processes
    on the same socket; each builds its app from the config passed in the
    environment (:data:`CONFIG_ENV`) and loads its own copy of the index.
    """
    import hashlib
    import os

    import uvicorn

    if config.processes == 1:
        app = create_app(config)  # loads and checks the index now: errors before listening
        snap = app.state.holder.current
        count, version = snap.count, snap.version
    else:  # each worker process loads its own copy; here only check that it loads
        from coversearch.serve.holder import load_pinned

        bundle, _, raw = load_pinned(config.index_dir, config.milvus_uri)
        count, version = bundle.count, hashlib.sha256(raw).hexdigest()[:12]
        del bundle
    scope = ("this machine only" if config.host in ("127.0.0.1", "localhost", "::1")
             else "ALL machines that can reach this one" if config.host in ("0.0.0.0", "::")
             else f"the network of {config.host}")
    procs = f"{config.processes} processes x " if config.processes > 1 else ""
    log(f"coversearch serve: {count} performances from {config.index_dir} (index {version}); "
        f"listening on http://{config.host}:{config.port}/ ({scope}); API docs at /docs; "
        f"{procs}{config.workers} heavy worker(s) + {config.queue} waiting; Ctrl-C stops")
    common = dict(host=config.host, port=config.port, log_level="warning", access_log=config.access_log)
    if config.processes == 1:
        uvicorn.run(app, **common)
        return
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run("coversearch.serve.app:app_from_env", factory=True, workers=config.processes, **common)


CONFIG_ENV = "COVERSEARCH_SERVE_CONFIG"
