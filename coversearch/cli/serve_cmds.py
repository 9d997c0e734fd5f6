"""Server verb: ``serve``."""

from __future__ import annotations

import click

from coversearch.cli import main
from coversearch.cli._common import _echo_err, _reports_errors
from coversearch.cli.scale_cmds import store_uri_options


@main.command("serve")
@click.option("--index-dir", type=click.Path(file_okay=False), default="indexes/default", show_default=True,
              help="Index folder to serve; a new build swapped in by `build-index` is picked up without a restart.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind. The default answers this machine only; 0.0.0.0 exposes the server to the network.")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Heavy requests (uploads, re-rank) analysed at the same time.")
@click.option("--queue", type=int, default=4, show_default=True,
              help="Heavy requests that may wait for a worker; beyond that the API answers 503 with Retry-After.")
@click.option("--max-upload-mb", type=float, default=100.0, show_default=True, help="Largest accepted upload (413 above).")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Encoder for uploaded files (default: shipped; must be the index's).")
@click.option("--watch-seconds", type=float, default=2.0, show_default=True,
              help="How often to check the index folder for a new build (0: only on POST /api/reload).")
@click.option("--max-k", type=int, default=100, show_default=True, help="Largest k a client may ask for.")
@click.option("--threads", type=int, default=1, show_default=True, help="Torch threads per heavy request.")
@click.option("--processes", type=int, default=1, show_default=True,
              help="Server processes on the same port; each loads its own copy of the index (memory x N) "
                   "and has its own heavy pool.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@store_uri_options
@_reports_errors
def serve_cmd(index_dir, host, port, workers, queue, max_upload_mb, model, watch_seconds, max_k, threads, processes,
              access_log, store, milvus_uri):
    """Serve the HTTP API (JSON, docs at /docs) and the search page at / .

    \b
    GET  /api/query/ID?k=10&rerank=false   as `coversearch query ID --json`
    POST /api/query/file                   multipart `file`: an h5 or audio file
    GET  /api/search?q=PREFIX              id/title/artist prefix (autocomplete)
    GET  /api/compare?a=ID&b=ID            as `coversearch compare A B --json`
    POST /api/compare/file                 multipart `a` (+ `b`, or form `b_id`)
    GET  /api/items/ID, /api/index, /api/health;  POST /api/reload
    """
    from coversearch.errors import ConfigError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"`coversearch serve` needs the serve extra ({e.name} is missing): "
                          "pip install 'coversearch[serve]'") from None
    from coversearch.serve import ServeConfig, run

    cfg = ServeConfig(index_dir=index_dir, host=host, port=port, workers=workers, queue=queue,
                      max_upload_mb=max_upload_mb, model=model, watch_seconds=watch_seconds, max_k=max_k,
                      threads=threads, access_log=access_log, milvus_uri=milvus_uri,
                      processes=processes)
    if store:  # fail now, with one line, if the folder keeps its vectors elsewhere
        from coversearch import api

        api.open_index(index_dir, store, milvus_uri, load_index=False)
    run(cfg, log=_echo_err)
