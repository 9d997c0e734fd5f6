"""Past one machine: the Ray Data pipeline of ``build-index --engine ray``
(:mod:`coversearch.scale.ray_build`). The Milvus store lives with the other
store in :mod:`coversearch.index.milvus_store`. Optional dependencies:
``pip install 'coversearch[scale]'``.
"""
