"""Options of the scale-out engines, shared by several verbs.

``ray_options`` (build-index): ``--engine local|ray``, ``--ray-address``,
``--ray-timeout``, ``--shard-dir``. ``store_options`` (build-index):
``--store faiss|milvus``, ``--milvus-uri``, ``--milvus-collection``.
``store_uri_options`` (query, evaluate, serve): ``--store``, ``--milvus-uri``
to check / redirect the store an index folder names. Each decorator adds the
options and the command passes them on to ``coversearch.api`` as keywords.
"""

from __future__ import annotations

import click


def _stack(*decorators):
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


ray_options = _stack(
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                 help="local: prepared cache + encoder in this process; ray: read -> prepare -> embed as a Ray Data "
                      "pipeline (pip install 'coversearch[scale]'); same items and vectors."),
    click.option("--ray-address", default=None, metavar="ADDRESS",
                 help="With --engine ray: an existing cluster (ray://head:10001, head:6379 or auto). "
                      "Default: start a local Ray with 2 CPUs."),
    click.option("--ray-timeout", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
                 help="With --engine ray: cancel the job after this long (default 24 h); the old index stays."),
    click.option("--shard-dir", type=click.Path(file_okay=False), default=None,
                 help="With --engine ray: folder for the Parquet shards, visible to every node "
                      "(default: beside --index-dir; removed afterwards)."),
)

store_options = _stack(
    click.option("--store", type=click.Choice(["faiss", "milvus"]), default="faiss", show_default=True,
                 help="Where the vectors are searched: index.faiss in the folder, or a Milvus collection."),
    click.option("--milvus-uri", default=None, metavar="URI",
                 help="With --store milvus: a Milvus server (http://host:19530) or a local Milvus Lite FILE.db."),
    click.option("--milvus-collection", default=None, metavar="NAME",
                 help="With --store milvus: collection base name (default coversearch_<index folder name>); "
                      "each build writes NAME_<time> and the manifest names it."),
)

store_uri_options = _stack(
    click.option("--store", type=click.Choice(["faiss", "milvus"]), default=None,
                 help="Expect this store (default: whatever the index folder's manifest names)."),
    click.option("--milvus-uri", default=None, metavar="URI",
                 help="Reach the index's Milvus collection at this URI instead of the recorded one."),
)
