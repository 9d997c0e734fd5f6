"""The index folder: choose (pure), store (FAISS), table (Parquet), manifest, bundle.

Kept import-light: import the submodules you need, e.g.
``from coversearch.index.bundle import load_bundle``; nothing here imports
faiss, pyarrow or torch at package import time.
"""
