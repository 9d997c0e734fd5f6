"""Adapt an index folder: load its model and sequences, adapt, write the new
folder (aside, swapped in only when complete) carrying the adapted model.

The new folder's manifest names the adapted model (``model_hash``, file
``model.pt`` inside the folder), its parent model and the adaptation record
(pairs mined, steps, seconds, peak memory, settings) under
``extra["adaptation"]``; the mined pairs themselves are kept in
``adapt_pairs.npy`` (rows of the items table), for audit. The checkpoint's own record holds the settings and
counts but no timings, so a seeded run gives a byte-identical model.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from coversearch.adapt import FinetuneConfig, MineConfig, adapt_encoder
from coversearch.errors import ConfigError
from coversearch.index.bundle import OWN_MODEL, write_bundle
from coversearch.index.choose import IndexSpec

RECORD_KEYS = ("settings", "n_pairs", "steps")
PAIRS = "adapt_pairs.npy"  # (M, 3) int64: round, row a, row b -- what the model learned from


def adapt_index(
    bundle,
    cache,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    out_model: str | Path | None = None,
    mine: MineConfig = MineConfig(),
    train: FinetuneConfig = FinetuneConfig(),
    rounds: int = 1,
    jobs: int = 2,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Adapt the encoder of a loaded index to its catalogue and write ``out_dir``.

    Args:
        bundle: the loaded index (:class:`coversearch.index.bundle.Bundle`).
        cache: its prepared sequences, anything with ``sequences()`` (row i =
            item i): the folder's own copy, or its prepared cache (checked by the caller).
        out_dir: the new index folder (may be the bundle's own folder: it is
            replaced only when the new one is complete).
        model: the index's encoder checkpoint; None = the one the folder
            carries, else the shipped encoder. Must have built the vectors.
        out_model: also write the adapted checkpoint there.
        mine, train, rounds, jobs: see :func:`coversearch.adapt.adapt_encoder`.

    Returns:
        {"index_dir", "model_hash", "parent_model_hash", "adaptation", "manifest"}.
    """
    from coversearch.model.checkpoint import load_checkpoint, save_checkpoint

    t0 = time.perf_counter()
    net, info = load_checkpoint(model or bundle.own_model())
    bundle.check_model(info["model_hash"], net.config.dim)
    if train.crop < 32:
        raise ConfigError(f"crop must be >= 32 frames, got {train.crop}")
    seqs = cache.sequences()
    vectors = bundle.vectors
    log(f"adapting model {info['model_hash']} to {len(seqs)} performances in {bundle.path}")
    adapted, vec, rec = adapt_encoder(net, seqs, vectors, mine=mine, train=train, rounds=rounds,
                                      jobs=jobs, progress=progress, log=log)
    mined_pairs = rec.pop("mined_pairs")
    seconds = time.perf_counter() - t0
    ckpt_record = {"adapted_from": info["model_hash"], "adaptation": {k: rec[k] for k in RECORD_KEYS},
                   "source": bundle.manifest.source, "n_items": len(seqs)}
    m = bundle.manifest
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.model.", dir=out_dir.parent))
    try:
        h = save_checkpoint(tmp / OWN_MODEL, adapted, ckpt_record)
        import numpy as np

        np.save(tmp / PAIRS, mined_pairs)
        files = {OWN_MODEL: tmp / OWN_MODEL, "model.json": tmp / "model.json", PAIRS: tmp / PAIRS}
        rr = bundle.path / "rerank.json"
        if rr.is_file():
            files["rerank.json"] = rr
        adaptation = {
            "parent_model_hash": info["model_hash"],
            "parent_model_name": m.model_name,
            **rec,
            "seconds": round(seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        cols = {c: bundle.items.column(c).to_pylist() for c in bundle.items.column_names}
        extra = {k: v for k, v in (m.extra or {}).items() if k not in ("adaptation", "index_note")}
        manifest = write_bundle(
            out_dir, vec, cols, spec=IndexSpec(m.index_kind, dict(m.index_params)),
            manifest_fields={"model_hash": h, "model_name": OWN_MODEL, "feature": m.feature, "hop": m.hop,
                             "dim": int(vec.shape[1]), "source": m.source,
                             "extra": extra | {"adaptation": adaptation}},
            extra_files=files,
            sequences=seqs,  # the adapted index re-ranks from its own copy too
        )
        if out_model:
            out_model = Path(out_model)
            out_model.parent.mkdir(parents=True, exist_ok=True)
            from coversearch._io import atomic_path

            for src, dst in ((tmp / OWN_MODEL, out_model), (tmp / "model.json", out_model.with_suffix(".json"))):
                with atomic_path(dst) as t:
                    shutil.copyfile(src, t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"index_dir": str(out_dir), "model_hash": h, "parent_model_hash": info["model_hash"],
            "adaptation": adaptation, "manifest": manifest}
